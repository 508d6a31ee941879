"""asyncpg's spans, started by ``asyncpg_spans.QueryTracer``, are the SDK's spans.

opentelemetry-instrumentation-asyncpg makes the spans; the distro hands it a
tracer that starts them the instrumentation's cheap way. Against a real
PostgreSQL, every kind of query (answered, failed, cancelled; under a span of
the bot's, or none) must give the same span as the instrumentation's own
tracer gives: name, kind, attributes, status, events, parent, scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from discord_otel.asyncpg_spans import QueryTracer, use_query_tracer
from discord_otel.instrumentation.recording import RecordingSpan

asyncpg = pytest.importorskip("asyncpg")
contrib = pytest.importorskip("opentelemetry.instrumentation.asyncpg")

pytestmark = pytest.mark.postgres

Scenario = Callable[[Any, trace.Tracer], Awaitable[None]]


async def _answered(pool: Any, tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("the bot's own"):
        assert await pool.fetchval("SELECT $1::int + 1", 41) == 42


async def _answered_without_a_span(pool: Any, tracer: trace.Tracer) -> None:
    async with pool.acquire() as connection:
        await connection.execute("SELECT 1")


async def _failed(pool: Any, tracer: trace.Tracer) -> None:
    with tracer.start_as_current_span("the bot's own"), pytest.raises(asyncpg.PostgresSyntaxError):
        await pool.fetch("SELEC nonsense")


async def _cancelled(pool: Any, tracer: trace.Tracer) -> None:
    async with pool.acquire() as connection:
        query = asyncio.ensure_future(connection.fetchval("SELECT pg_sleep(5)"))
        await asyncio.sleep(0.2)
        query.cancel()
        with pytest.raises(asyncio.CancelledError):
            await query


async def _in_a_cursor(pool: Any, tracer: trace.Tracer) -> None:
    async with pool.acquire() as connection, connection.transaction():
        rows = [row async for row in connection.cursor("SELECT generate_series(1, 3)")]
        assert len(rows) == 3


SCENARIOS: dict[str, Scenario] = {
    "answered": _answered,
    "answered without a span": _answered_without_a_span,
    "failed": _failed,
    "cancelled": _cancelled,
    "in a cursor": _in_a_cursor,
}


def _described(spans: list[ReadableSpan]) -> list[dict[str, Any]]:
    """What a user sees of the query spans (the bot's own span named as parent)."""
    names = {s.context.span_id: s.name for s in spans if s.context}
    described = []
    for span in spans:
        if span.instrumentation_scope is None or "asyncpg" not in span.instrumentation_scope.name:
            continue
        events = []
        for event in span.events:
            attributes = dict(event.attributes or {})
            stacktrace = str(attributes.pop("exception.stacktrace", ""))
            events.append((event.name, attributes, "Error" in stacktrace))
        described.append(
            {
                "name": span.name,
                "kind": span.kind,
                "attributes": dict(span.attributes or {}),
                "status": (span.status.status_code, span.status.description),
                "events": events,
                "parent": names.get(span.parent.span_id) if span.parent else None,
                "same trace as parent": span.parent is None
                or (span.context is not None and span.parent.trace_id == span.context.trace_id),
                "scope": (
                    span.instrumentation_scope.name,
                    span.instrumentation_scope.version,
                    span.instrumentation_scope.schema_url,
                ),
                "ended": span.end_time is not None and span.end_time >= (span.start_time or 0),
            }
        )
    return described


async def _run(scenario: Scenario, dsn: str, fast: bool) -> tuple[list[dict[str, Any]], set[type]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = contrib.AsyncPGInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        if fast:
            use_query_tracer(instrumentor)
            assert type(instrumentor._tracer) is QueryTracer
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        exporter.clear()  # the pool's own set-up
        try:
            await scenario(pool, provider.get_tracer("the bot"))
        finally:
            await pool.close()
    finally:
        instrumentor.uninstrument()
    spans = list(exporter.get_finished_spans())
    query_types = {
        type(s)
        for s in spans
        if s.instrumentation_scope and "asyncpg" in s.instrumentation_scope.name
    }
    return _described(spans), query_types


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_a_query_span_is_the_one_the_sdk_makes(scenario: str, postgres_server: Any) -> None:
    expected, sdk_types = await _run(SCENARIOS[scenario], postgres_server.dsn, fast=False)
    seen, fast_types = await _run(SCENARIOS[scenario], postgres_server.dsn, fast=True)
    assert expected  # the scenario made query spans
    assert seen == expected
    assert fast_types == {RecordingSpan}  # ... and they were started the cheap way
    assert RecordingSpan not in sdk_types


def test_attributes_the_sdk_would_clean_go_to_the_sdk() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    tracer = QueryTracer(provider.get_tracer("queries"))
    for attributes in ({"db.statement": None}, {"db.rows": [1, 2]}, {"": "empty key"}):
        with tracer.start_as_current_span("SELECT", attributes=attributes) as span:
            assert type(span) is not RecordingSpan
    with tracer.start_as_current_span("SELECT", attributes={"db.system": "postgresql"}) as span:
        assert type(span) is RecordingSpan
        assert trace.get_current_span() is span
    provider.shutdown()
