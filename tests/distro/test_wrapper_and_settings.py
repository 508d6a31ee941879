"""The distro under opentelemetry-instrument, every setting's bad values, and the
optional Prometheus endpoint scraped by a real Prometheus."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from tests.distro.conftest import BOTS, REPO, VENV_BIN, bot_env, run_bot
from tests.fixtures.otlp_receiver import OtlpReceiver
from tests.fixtures.services import free_port
from tests.foundation.test_config import GOOD_AND_BAD

INSTRUMENT = [str(VENV_BIN / "opentelemetry-instrument")]


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_opentelemetry_instrument_loads_distro_and_configurator(
    otlp_receiver: OtlpReceiver, protocol: str
) -> None:
    env = bot_env({**otlp_receiver.env(protocol), "BOT_SECONDS": "1"})
    run = run_bot("plain_bot.py", env, wrapper=INSTRUMENT)
    assert run.returncode == 0, run.stderr
    # configure() inside the bot found the pipeline already running: nothing twice
    assert "already instrumented" not in run.stderr, run.stderr
    assert run.stats["dropped"] == 0
    spans = [s for s in otlp_receiver.spans() if s.name == "command ping"]
    assert len(spans) == run.stats["handled"]
    assert spans[0].resource["telemetry.distro.name"] == "discord-otel"
    logs = [r for r in otlp_receiver.logs() if "responded with 429" in str(r.body)]
    assert len(logs) == run.stats["handled"]  # one handler, not two
    assert {r.trace_id for r in logs} == {s.trace_id for s in spans}
    assert "process.cpu.time" in otlp_receiver.metric_names()


def test_disabled_instrumentations_still_work(otlp_receiver: OtlpReceiver) -> None:
    env = bot_env(
        {
            **otlp_receiver.env(),
            "BOT_SECONDS": "1",
            "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "system_metrics, logging",
        }
    )
    run = run_bot("plain_bot.py", env, wrapper=INSTRUMENT)
    assert run.returncode == 0, run.stderr
    otlp_receiver.wait_for(lambda r: r.metric_names(), what="metrics")
    assert not [n for n in otlp_receiver.metric_names() if n.startswith("process.")]
    assert otlp_receiver.spans()
    assert otlp_receiver.logs() == []


def test_system_metrics_all_adds_host_metrics(otlp_receiver: OtlpReceiver) -> None:
    env = bot_env(
        {**otlp_receiver.env(), "BOT_SECONDS": "1", "OTEL_PYTHON_DISCORD_SYSTEM_METRICS": "all"}
    )
    run = run_bot("plain_bot.py", env)
    assert run.returncode == 0, run.stderr
    otlp_receiver.wait_for(
        lambda r: [n for n in r.metric_names() if n.startswith("system.")], what="system.*"
    )


def test_every_bad_setting_warns_once_and_the_bot_runs(otlp_receiver: OtlpReceiver) -> None:
    bad = {name: values[1] for name, values in GOOD_AND_BAD.items()}
    env = bot_env({**otlp_receiver.env(), "BOT_SECONDS": "0.5", **bad})
    for wrapper in (None, INSTRUMENT):
        run = run_bot("plain_bot.py", env, wrapper=wrapper)
        assert run.returncode == 0, run.stderr
        assert run.stats["handled"] > 0
        for name, value in bad.items():
            lines = [line for line in run.stderr.splitlines() if name in line]
            assert len(lines) == 1, (name, run.stderr)
            assert repr(value) in lines[0]
            assert "default" in lines[0]


def test_bad_standard_protocol_does_not_crash_the_bot() -> None:
    env = bot_env({"BOT_SECONDS": "0.3", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"})
    run = run_bot("plain_bot.py", env, wrapper=INSTRUMENT)
    # the SDK rejects it; the bot must still run
    assert run.returncode == 0, run.stderr
    assert run.stats["handled"] > 0


@pytest.mark.prometheus
def test_prometheus_endpoint_scraped(prometheus_server, otlp_receiver: OtlpReceiver) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = bot_env(
        {
            **otlp_receiver.env(),
            "BOT_SECONDS": "0",
            "BOT_RATE": "20",
            "OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS": f"127.0.0.1:{port}",
        }
    )
    process = subprocess.Popen(
        [sys.executable, str(BOTS / "plain_bot.py")],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        prometheus_server.add_target(address, target="distro-test")
        series = prometheus_server.wait_for(
            'bot_handle_duration_seconds_count{target="distro-test"}', timeout=30
        )
        assert float(series[0]["value"][1]) > 0
        assert prometheus_server.wait_for('process_cpu_time_seconds_total{target="distro-test"}')
        info = prometheus_server.wait_for('target_info{target="distro-test"}')
        assert info[0]["metric"]["service_name"] == "distro-test-bot"
        # OTLP keeps working alongside the scrape endpoint
        otlp_receiver.wait_for(lambda r: "bot.handle.duration" in r.metric_names())
    finally:
        prometheus_server.remove_target(address)
        process.send_signal(signal.SIGUSR1)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_prometheus_port_in_use_warns(otlp_receiver: OtlpReceiver) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        env = bot_env(
            {
                **otlp_receiver.env(),
                "BOT_SECONDS": "0.3",
                "OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS": f"127.0.0.1:{port}",
            }
        )
        started = time.monotonic()
        run = run_bot("plain_bot.py", env)
    assert run.returncode == 0, run.stderr
    assert "cannot serve Prometheus metrics" in run.stderr
    assert time.monotonic() - started < 60
