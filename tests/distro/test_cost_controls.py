"""What the distro installs in each mode, in a real `opentelemetry-instrument`
process: nothing at all with the SDK disabled, no span machinery when traces are
off, and the start-up objects frozen out of the garbage collector's scans."""

from __future__ import annotations

import json
import subprocess

from tests.distro.conftest import VENV_BIN, bot_env

PROBE = """
import gc, json, logging, sys
import discord.http
from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from discord_otel.asyncpg_metrics import AsyncPGMetricsInstrumentor
from discord_otel.instrumentation import runtime
handlers = [type(h).__name__ for h in logging.getLogger().handlers]
print(json.dumps({
    "request_patched": hasattr(discord.http.HTTPClient.request, "__wrapped__"),
    "instrumented": runtime.active is not None,
    "tracing": runtime.active.refresh_tracing() if runtime.active else None,
    "tracer_provider": type(trace.get_tracer_provider()).__name__,
    "root_handlers": handlers,
    "frozen": gc.get_freeze_count(),
    "asyncpg_spans": AsyncPGInstrumentor().is_instrumented_by_opentelemetry,
    "asyncpg_metrics": AsyncPGMetricsInstrumentor().is_instrumented_by_opentelemetry,
    "requests_imported": "requests" in sys.modules,
}))
"""


def _probe(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [str(VENV_BIN / "opentelemetry-instrument"), str(VENV_BIN / "python"), "-c", PROBE],
        env=bot_env({"OTEL_METRIC_EXPORT_INTERVAL": "60000", **env}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_default_mode_instruments_traces_and_freezes_startup_objects() -> None:
    probe = _probe({})
    assert probe["request_patched"] is True
    assert probe["tracing"] is True
    assert probe["tracer_provider"] == "TracerProvider"
    assert probe["asyncpg_spans"] is True
    assert probe["asyncpg_metrics"] is True
    assert isinstance(probe["frozen"], int)
    assert probe["frozen"] > 10_000
    # the OTLP/HTTP exporters send through urllib3: requests (~4 MB) is never imported
    assert probe["requests_imported"] is False


def test_a_proxy_keeps_the_requests_transport() -> None:
    probe = _probe({"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    assert probe["tracing"] is True
    assert probe["requests_imported"] is True


def test_sdk_disabled_installs_no_hook_and_no_handler() -> None:
    probe = _probe({"OTEL_SDK_DISABLED": "true"})
    assert probe["request_patched"] is False
    assert probe["instrumented"] is False
    assert not any("Otlp" in h or h == "LoggingHandler" for h in probe["root_handlers"])  # type: ignore[attr-defined]
    # what opentelemetry-instrument imported anyway is kept out of the GC's scans
    assert isinstance(probe["frozen"], int)
    assert probe["frozen"] > 10_000


def test_metrics_only_builds_no_spans() -> None:
    probe = _probe({"OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"})
    assert probe["request_patched"] is True  # the hooks still record metrics
    assert probe["tracing"] is False
    assert probe["tracer_provider"] == "ProxyTracerProvider"
    # asyncpg: the duration histogram, not the span instrumentation (no-op spans per query)
    assert probe["asyncpg_metrics"] is True
    assert probe["asyncpg_spans"] is False


def test_gc_freeze_can_be_turned_off() -> None:
    assert _probe({"OTEL_PYTHON_DISCORD_GC_FREEZE": "false"})["frozen"] == 0
