"""A bot process exports traces, metrics and logs over real OTLP/HTTP and OTLP/gRPC,
sharing trace IDs, with the contract's resource and no secrets."""

from __future__ import annotations

import pytest

from tests.distro.conftest import DISCORD_TOKEN, bot_env, run_bot
from tests.fixtures.otlp_receiver import OtlpReceiver

WEBHOOK_TOKEN = "whTOKEN-" + "x" * 60


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_three_signals_share_trace_ids(otlp_receiver: OtlpReceiver, protocol: str) -> None:
    run = run_bot("plain_bot.py", bot_env({**otlp_receiver.env(protocol), "BOT_SECONDS": "1.5"}))
    assert run.returncode == 0, run.stderr
    stats = run.stats
    assert stats["dropped"] == 0, run.stderr
    transport = "grpc" if protocol == "grpc" else "http"
    other = "http" if protocol == "grpc" else "grpc"
    assert otlp_receiver.requests_by_transport[transport] > 0
    assert otlp_receiver.requests_by_transport[other] == 0

    spans = [s for s in otlp_receiver.spans() if s.name == "command ping"]
    assert len(spans) == stats["handled"]  # nothing lost with the Collector up
    span_by_trace = {s.trace_id: s for s in spans}
    resource = spans[0].resource
    assert resource["service.name"] == "distro-test-bot"
    assert resource["telemetry.distro.name"] == "discord-otel"
    assert resource["telemetry.distro.version"]
    assert resource["service.instance.id"]
    assert resource["host.name"]
    assert resource["process.pid"] > 0
    assert "process.command_args" not in resource  # a token could be on the command line

    logs = [r for r in otlp_receiver.logs() if "responded with 429" in str(r.body)]
    assert len(logs) == stats["handled"]
    for record in logs:
        span = span_by_trace[record.trace_id]
        assert record.span_id == span.span_id
        assert "REDACTED" in record.body
        assert not any(key.startswith("otel") for key in record.attributes)
    assert {r.resource["service.instance.id"] for r in logs} == {resource["service.instance.id"]}

    points = [p for p in otlp_receiver.metric_points() if p.name == "bot.handle.duration"]
    exemplar_ids = {tid for p in points for tid in p.exemplar_trace_ids}
    assert exemplar_ids, "histogram points carry exemplars"
    assert exemplar_ids <= set(span_by_trace)

    names = otlp_receiver.metric_names()
    assert {"process.cpu.time", "process.memory.usage", "cpython.gc.collections"} <= names
    assert not [n for n in names if n.startswith("system.")]

    for secret in (DISCORD_TOKEN, WEBHOOK_TOKEN):
        assert not otlp_receiver.contains_bytes(secret.encode())


def test_default_service_name_warns_once(otlp_receiver: OtlpReceiver) -> None:
    env = bot_env({**otlp_receiver.env(), "BOT_SECONDS": "0.3"})
    del env["OTEL_SERVICE_NAME"]
    run = run_bot("plain_bot.py", env)
    assert run.returncode == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "OTEL_SERVICE_NAME" in line]
    assert len(warnings) == 1, run.stderr
    otlp_receiver.wait_for(lambda r: r.spans(), what="spans")
    assert otlp_receiver.spans()[0].resource["service.name"] == "discord-bot"


def test_standard_variables_win(otlp_receiver: OtlpReceiver) -> None:
    """OTEL_* set by the user override every default: no traces, delta temporality."""
    env = bot_env(
        {
            **otlp_receiver.env(),
            "BOT_SECONDS": "0.5",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
            "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.2.3,deployment.environment.name=test",
        }
    )
    run = run_bot("plain_bot.py", env)
    assert run.returncode == 0, run.stderr
    assert otlp_receiver.trace_requests == []
    otlp_receiver.wait_for(lambda r: r.logs(), what="logs")
    resource = otlp_receiver.logs()[0].resource
    assert resource["service.version"] == "1.2.3"
    assert resource["deployment.environment.name"] == "test"
    with otlp_receiver._lock:
        requests = list(otlp_receiver.metric_requests)
    sums = [
        m.sum
        for r in requests
        for rm in r.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.WhichOneof("data") == "sum" and m.sum.is_monotonic
    ]
    # counters follow the preference (up-down counters stay cumulative under "delta")
    assert sums
    assert all(s.aggregation_temporality == 1 for s in sums)


@pytest.mark.postgres
def test_asyncpg_spans_nest_without_parameters(
    otlp_receiver: OtlpReceiver, postgres_server
) -> None:  # type: ignore[no-untyped-def]
    env = bot_env({**otlp_receiver.env(), "BOT_SECONDS": "1", "DATABASE_URL": postgres_server.dsn})
    run = run_bot("plain_bot.py", env)
    assert run.returncode == 0, run.stderr
    spans = otlp_receiver.spans()
    commands = {s.span_id: s for s in spans if s.name == "command ping"}
    db_spans = [s for s in spans if s.scope.startswith("opentelemetry.instrumentation.asyncpg")]
    assert db_spans
    for span in db_spans:
        assert span.parent_span_id in commands
        assert span.attributes.get("db.system.name") == "postgresql"  # stable DB semconv
        assert "db.statement.parameters" not in span.attributes
    assert not otlp_receiver.contains_bytes(b"sql-parameter-value")

    points = [p for p in otlp_receiver.metric_points() if p.name == "db.client.operation.duration"]
    assert points
    assert points[0].unit == "s"
    assert {p.attributes.get("db.operation.name") for p in points} == {"SELECT"}
    assert {p.attributes["db.system.name"] for p in points} == {"postgresql"}
    count, _sum, bounds, _buckets = points[-1].value
    assert count >= len(commands)
    assert bounds[:3] == [0.001, 0.0025, 0.005]
    exemplars = {t for p in points for t in p.exemplar_trace_ids}
    assert exemplars <= {s.trace_id for s in commands.values()}
