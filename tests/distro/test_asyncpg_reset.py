"""asyncpg's pool reset on release is neither a span nor a histogram point."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from discord_otel.asyncpg_metrics import AsyncPGMetricsInstrumentor


@pytest.mark.postgres
def test_pool_release_reset_is_not_traced(postgres_server: Any) -> None:
    asyncpg = pytest.importorskip("asyncpg")
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    ours = AsyncPGMetricsInstrumentor()
    spans_instrumentor = AsyncPGInstrumentor()
    ours.instrument(meter_provider=meter_provider)
    spans_instrumentor.instrument(tracer_provider=tracer_provider)
    try:

        async def main() -> tuple[Any, Any]:
            pool = await asyncpg.create_pool(postgres_server.dsn, min_size=1, max_size=1)
            try:
                first = await pool.fetchval("SELECT 1")
                async with pool.acquire() as connection:
                    second = await connection.fetchval("SELECT 2")
                return first, second
            finally:
                await pool.close()

        assert asyncio.run(main()) == (1, 2)
    finally:
        spans_instrumentor.uninstrument()
        ours.uninstrument()

    statements = [
        s.attributes.get("db.query.text") or s.name for s in exporter.get_finished_spans()
    ]
    assert len(statements) == 2, statements
    assert not any("RESET" in str(text) or "pg_advisory" in str(text) for text in statements)
    data = reader.get_metrics_data()
    assert data is not None
    points = [
        point
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == "db.client.operation.duration"
        for point in metric.data.data_points
    ]
    assert sum(point.count for point in points) == 2
