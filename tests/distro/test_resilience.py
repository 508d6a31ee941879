"""With the Collector refusing, black-holed or restarted, the bot keeps handling
events, its queues and memory stay bounded, the loop is never stalled by export,
and shutdown finishes within its bound and reports what was dropped.

The bounds asserted are generous correctness checks, not performance targets
(throughput under faults is measured by the benchmark harness)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.distro.conftest import BOTS, REPO, bot_env, run_bot
from tests.fixtures.otlp_receiver import OtlpReceiver

RATE = 200
SECONDS = 3.0
SHUTDOWN_TIMEOUT = 2.0
MAX_QUEUE = 2048  # the SDK's default OTEL_BSP_MAX_QUEUE_SIZE / OTEL_BLRP_MAX_QUEUE_SIZE
LOOP_LAG_BOUND = 1.0  # seconds: a stalled loop would show export timeouts (5 s)
SLACK = 1.5  # seconds on top of the shutdown bound, for process start and teardown


def _env(receiver: OtlpReceiver, protocol: str, **extra: str) -> dict[str, str]:
    return bot_env(
        {
            **receiver.env(protocol),
            "BOT_SECONDS": str(SECONDS),
            "BOT_RATE": str(RATE),
            "OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
            **extra,
        }
    )


def _assert_kept_working(stats: dict, stderr: str) -> None:  # type: ignore[type-arg]
    expected = RATE * SECONDS
    assert stats["handled"] >= 0.8 * expected, stats
    assert stats["max_lag"] < LOOP_LAG_BOUND, stats
    assert all(length <= MAX_QUEUE for length in stats["max_queue"].values()), stats
    assert stats["shutdown_seconds"] < SHUTDOWN_TIMEOUT + 0.5, stats
    reports = [line for line in stderr.splitlines() if "telemetry shut down" in line]
    assert len(reports) == 1, stderr
    assert "not delivered" in reports[0]
    assert stats["dropped"] > 0
    # every span and log record is accounted for: nothing was delivered, all reported lost
    for kind in ("spans", "log records"):
        assert stats["counts"][kind] == {"exported": 0, "dropped": stats["handled"]}, stats
    # the exporters' warnings are rate-limited, never one per event
    assert stderr.count("Queue full") == 0
    assert len(stderr.splitlines()) < 40, stderr


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize("mode", ["refusing", "blackhole"])
def test_collector_down(otlp_receiver: OtlpReceiver, protocol: str, mode: str) -> None:
    otlp_receiver.set_mode(mode)
    run = run_bot("plain_bot.py", _env(otlp_receiver, protocol), timeout=60)
    assert run.returncode == 0, run.stderr
    _assert_kept_working(run.stats, run.stderr)


def test_memory_bounded_under_blackhole(otlp_receiver: OtlpReceiver) -> None:
    """Two runs, one twice as long: peak RSS must not grow with run time."""
    otlp_receiver.set_mode("blackhole")
    short = run_bot("plain_bot.py", _env(otlp_receiver, "http/protobuf", BOT_SECONDS="3"))
    long = run_bot("plain_bot.py", _env(otlp_receiver, "http/protobuf", BOT_SECONDS="6"))
    assert short.returncode == 0, short.stderr
    assert long.returncode == 0, long.stderr
    # both queues full in both runs; more events must not mean more memory
    assert long.stats["handled"] > 1.5 * short.stats["handled"]
    assert long.stats["max_rss_kb"] < short.stats["max_rss_kb"] * 1.25 + 20_000, (
        short.stats,
        long.stats,
    )


def test_collector_restarted_mid_run(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.set_mode("refusing")
    env = _env(otlp_receiver, "http/protobuf", BOT_SECONDS="5")
    result: dict[str, object] = {}

    def run() -> None:
        result["run"] = run_bot("plain_bot.py", env, timeout=60)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.5)
    otlp_receiver.set_mode("normal")
    time.sleep(1.0)
    otlp_receiver.restart(down_for=0.5)
    thread.join(60)
    bot = result["run"]
    assert bot.returncode == 0, bot.stderr  # type: ignore[attr-defined]
    stats = bot.stats  # type: ignore[attr-defined]
    assert stats["handled"] >= 0.8 * RATE * 5
    assert stats["max_lag"] < LOOP_LAG_BOUND
    # exporting resumed after the Collector came back
    spans = [s for s in otlp_receiver.spans() if s.name == "command ping"]
    assert len(spans) > RATE
    assert otlp_receiver.logs()
    assert otlp_receiver.metric_points()


@pytest.mark.parametrize("mode", ["normal", "blackhole"])
def test_sigterm_shuts_down_within_bound(otlp_receiver: OtlpReceiver, mode: str) -> None:
    otlp_receiver.set_mode(mode)
    env = _env(otlp_receiver, "http/protobuf", BOT_SECONDS="0")
    process = subprocess.Popen(
        [sys.executable, str(BOTS / "plain_bot.py")],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2.0)
        assert process.poll() is None
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=SHUTDOWN_TIMEOUT + 10)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert took < SHUTDOWN_TIMEOUT + SLACK, (took, stderr)
    # the report is a warning only when something was lost (else INFO, not shown here)
    reports = [line for line in stderr.splitlines() if "telemetry shut down" in line]
    if mode == "normal":
        assert reports == [], stderr
        assert otlp_receiver.spans()
    else:
        assert len(reports) == 1, stderr
        assert "not delivered" in reports[0]
