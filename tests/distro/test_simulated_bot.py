"""End to end: examples/bot.py run by `discord-otel simulate` under
`opentelemetry-instrument`, exporting to the test receiver over OTLP/HTTP and
OTLP/gRPC, with the real PostgreSQL."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from importlib.metadata import entry_points

import pytest

from tests.distro.conftest import DISCORD_TOKEN, REPO, VENV_BIN, bot_env
from tests.fixtures.otlp_receiver import OtlpReceiver
from tests.fixtures.services import free_port

UNSCRUBBED = re.compile(rb"/(?:webhooks|interactions)/\d+/(?!REDACTED)[A-Za-z0-9_.\-]{8,}")
# the example bot's !announce posts through this webhook with its own aiohttp session
ANNOUNCE_WEBHOOK_ID = "123456789012345678"
ANNOUNCE_WEBHOOK_TOKEN = "Wh" + "k" * 62
HAS_DISCORD_INSTRUMENTATION = bool(
    list(entry_points(group="opentelemetry_instrumentor", name="discord"))
)


def _simulate(env: dict[str, str], health_port: int | None = None) -> tuple[object, list]:  # type: ignore[type-arg]
    command = [
        str(VENV_BIN / "discord-otel"),
        "simulate",
        "--scenario",
        "examples/scenarios/tour.yaml",
        "--",
        str(VENV_BIN / "opentelemetry-instrument"),
        str(VENV_BIN / "python"),
        "examples/bot.py",
    ]
    probes: list[tuple[int, dict]] = []  # type: ignore[type-arg]
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{health_port}/readyz", timeout=1
                ) as response:
                    probes.append((response.status, json.load(response)))
            except urllib.error.HTTPError as error:
                probes.append((error.code, json.load(error)))
            except OSError:
                pass
            time.sleep(0.05)

    thread = threading.Thread(target=probe, daemon=True)
    if health_port is not None:
        thread.start()
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=120, cwd=REPO
        )
    finally:
        stop.set()
    return done, probes


@pytest.mark.postgres
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_example_bot_exports_everything(
    otlp_receiver: OtlpReceiver,
    postgres_server,  # type: ignore[no-untyped-def]
    protocol: str,
) -> None:
    health_port = free_port()
    env = bot_env(
        {
            **otlp_receiver.env(protocol),
            "DATABASE_URL": postgres_server.dsn,
            "OTEL_PYTHON_DISCORD_HEALTH_ADDRESS": f"127.0.0.1:{health_port}",
            "ANNOUNCE_WEBHOOK_URL": "https://discord.com/api/webhooks/"
            f"{ANNOUNCE_WEBHOOK_ID}/{ANNOUNCE_WEBHOOK_TOKEN}",
        }
    )
    done, probes = _simulate(env, health_port)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]  # type: ignore[attr-defined]
    transport = "grpc" if protocol == "grpc" else "http"
    assert otlp_receiver.requests_by_transport[transport] > 0
    assert otlp_receiver.requests_by_transport["http" if transport == "grpc" else "grpc"] == 0

    spans = otlp_receiver.spans()
    http_spans = [s for s in spans if s.scope.endswith("aiohttp_client")]
    # Only the bot's own session (the !announce webhook) makes aiohttp-client spans;
    # discord.py's session is traced by the REST hook alone, without duplicates.
    assert len(http_spans) == 1, [s.attributes["url.full"] for s in http_spans]
    url = str(http_spans[0].attributes["url.full"])
    assert f"/webhooks/{ANNOUNCE_WEBHOOK_ID}/REDACTED" in url
    assert ANNOUNCE_WEBHOOK_TOKEN not in str(http_spans[0].attributes)
    db_spans = [s for s in spans if s.scope.endswith("asyncpg")]
    assert db_spans
    assert all("db.statement.parameters" not in s.attributes for s in db_spans)
    assert all(s.attributes.get("db.system.name") == "postgresql" for s in db_spans)

    records = otlp_receiver.logs()
    assert any(r.scope.startswith("discord.") for r in records)  # discord.py's own loggers
    assert not any(r.scope.startswith("opentelemetry") for r in records)
    names = otlp_receiver.metric_names()
    assert "db.client.operation.duration" in names
    assert "process.cpu.time" in names

    # no token of any kind in anything received
    assert not otlp_receiver.contains_bytes(DISCORD_TOKEN.encode())
    with otlp_receiver._lock:
        payloads = list(otlp_receiver.raw)
    leaks = [m.group(0) for p in payloads for m in UNSCRUBBED.finditer(p)]
    assert leaks == []

    if not HAS_DISCORD_INSTRUMENTATION:
        return
    # --- with the discord instrumentation: one trace from command to REST and SQL
    by_id = {s.span_id: s for s in spans}
    commands = [s for s in spans if s.name.startswith("command ")]
    assert commands
    ping = next(s for s in commands if s.name == "command ping")
    ping_db = [s for s in db_spans if s.trace_id == ping.trace_id]
    assert ping_db, "the ping command's INSERT is in its trace"
    for span in ping_db:
        ancestor = by_id.get(span.parent_span_id)
        while ancestor is not None and ancestor.span_id != ping.span_id:
            ancestor = by_id.get(ancestor.parent_span_id)
        assert ancestor is not None, "the query nests under the command span"
    for span in http_spans:  # the attempt nests under the route-templated REST span
        parent = by_id.get(span.parent_span_id)
        assert parent is not None, (span.name, dict(span.attributes))
        assert parent.kind == 3  # CLIENT
        assert parent.name == "POST /webhooks/{webhook_id}/{webhook_token}"
    command_traces = {s.trace_id for s in commands}
    assert any(r.trace_id in command_traces for r in records)
    for record in records:
        if record.trace_id and record.trace_id != "0" * 32 and record.span_id:
            assert record.span_id in by_id or record.trace_id in command_traces
    assert any(status == 200 for status, _ in probes), probes[-3:]
    assert "trace_id=" in done.stderr  # type: ignore[attr-defined]
