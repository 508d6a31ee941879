"""``discord-otel demo``: it runs, shows live telemetry, exports to a Collector
when one answers, and runs the same bot as examples/bot.py."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from tests.distro.conftest import c_compiler_found
from tests.fixtures.otlp_receiver import OtlpReceiver
from tests.fixtures.services import free_port

REPO = Path(__file__).resolve().parents[2]
DEMO = [sys.executable, "-m", "discord_otel", "demo"]
TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")

pytestmark = pytest.mark.slow


def run_demo(*args: str, env: dict[str, str] | None = None, timeout: float = 90) -> str:
    environment = {**os.environ, **(env or {})}
    environment.pop("OTEL_SERVICE_NAME", None)
    done = subprocess.run(
        [*DEMO, *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:]
    return done.stdout


def has_span_tree(out: str) -> bool:
    """A ``gateway`` span with a ``command`` span below it (within 3 lines), with durations."""
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if re.search(r"gateway [A-Z_]+\s+[\d.]+ ms", line):
            below = lines[index + 1 : index + 4]
            if any(re.search(r"(└──|├──|`--|\|--) command \S+.*[\d.]+ ms", b) for b in below):
                return True
    return False


def test_demo_shows_commands_errors_routes_traces_and_logs() -> None:
    # Nothing listens on this endpoint: the demo shows its telemetry in the terminal only.
    closed = f"http://127.0.0.1:{free_port()}"
    out = run_demo(
        "--duration", "10", "--interval", "4", env={"OTEL_EXPORTER_OTLP_ENDPOINT": closed}
    )
    assert "Telemetry shown here only" in out
    assert "snapshot at" in out  # a plain snapshot before the end (stdout is not a TTY)
    for shown in (
        "commands per second",
        "latency p50 / p95 / p99",
        "errors",
        "POST /channels/{channel_id}/messages",
        "POST /interactions/{webhook_id}/{webhook_token}/callback",
        "Latest traces",
        "gateway MESSAGE_CREATE",
        "gateway INTERACTION_CREATE",
        "Recent logs",
        "Summary",
    ):
        assert shown in out, f"{shown!r} not in the demo's output:\n{out[-4000:]}"
    # A span tree: a gateway span with a command under it, with durations.
    assert has_span_tree(out), out[-4000:]
    # Some commands failed, and the failures are named.
    assert re.search(r"commands\s+\d+, [1-9]\d* errors", out), out[-2000:]
    # Named by type (which ones depends on the random traffic of a short run: !fail's
    # RuntimeError, !admin's MissingRole, unknown commands, injected faults).
    assert re.search(r"errors by type\s+[A-Za-z_]\w* \d+", out), out[-2000:]
    # Log lines carry trace ids.
    logs = out[out.rindex("Recent logs") :]
    assert TRACE_ID.search(logs), logs


def test_demo_exports_over_otlp_when_a_collector_answers(otlp_receiver: OtlpReceiver) -> None:
    env = otlp_receiver.env(export_interval_ms=1000)
    out = run_demo("--duration", "8", "--interval", "100", env=env)
    assert f"Exporting over OTLP (http/protobuf) to {otlp_receiver.http_endpoint}" in out
    assert re.search(r"export\s+OTLP to ", out), out[-2000:]

    spans = otlp_receiver.spans()
    names = {span.name for span in spans}
    assert any(name.startswith("command ") for name in names), names
    assert "POST /channels/{channel_id}/messages" in names
    assert {span.resource.get("service.name") for span in spans} == {"discord-otel-demo"}
    assert "discord.command.duration" in otlp_receiver.metric_names()
    logs = otlp_receiver.logs()
    span_traces = {span.trace_id for span in spans}
    assert any(record.trace_id in span_traces for record in logs)


def test_wheel_ships_examples_bot_py_for_the_demo(tmp_path: Path) -> None:
    """A pip-installed package has no examples/: the wheel carries examples/bot.py
    where the demo looks for it, byte for byte."""
    from discord_otel.demo.example import CHECKOUT, example_path

    assert CHECKOUT == REPO / "examples" / "bot.py"
    assert example_path() == CHECKOUT  # a checkout runs examples/bot.py itself
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path)],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("discord_otel-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("discord_otel/demo/example_bot.py")
        names = archive.namelist()
    assert shipped == CHECKOUT.read_bytes()
    assert "discord_otel/demo/example.py" in names
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for module in ("_otlp_speedups", "_gateway_speedups"):
        assert f"discord_otel/{module}.c" not in names  # compiled, not shipped
        if c_compiler_found():  # the build hook compiled the C halves into it
            assert f"discord_otel/{module}{suffix}" in names


def test_demo_help_lists_its_options() -> None:
    out = subprocess.run(
        [*DEMO, "--help"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    for option in ("--duration", "--rate", "--export", "--plain", "--interval"):
        assert option in out


def test_latest_traces_show_a_failure_and_another_kind_of_command() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Status, StatusCode, set_span_in_context

    from discord_otel.demo.store import SpanStore

    store = SpanStore()
    provider = TracerProvider()
    provider.add_span_processor(store)
    tracer = provider.get_tracer("test")

    def command(gateway: str, name: str, failed: bool = False) -> None:
        root = tracer.start_span(gateway)
        context = set_span_in_context(root)
        handler = tracer.start_span(name, context=context)
        tracer.start_span("POST /x", context=set_span_in_context(handler)).end()
        if failed:
            handler.set_status(Status(StatusCode.ERROR, "RuntimeError"))
        handler.end()
        root.end()

    command("gateway INTERACTION_CREATE", "command roll")
    command("gateway MESSAGE_CREATE", "command fail", failed=True)
    for _ in range(3):  # the newest traces are all prefix commands
        command("gateway MESSAGE_CREATE", "command ping")
    shown = [trace.root_name for trace in store.latest(2, settle=0.0)]
    assert shown == ["gateway MESSAGE_CREATE", "gateway INTERACTION_CREATE"]
    assert store.latest(2, settle=0.0)[0].failed
