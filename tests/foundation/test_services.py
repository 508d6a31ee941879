"""The real-service fixtures work: a query through asyncpg against the session's
PostgreSQL, and a scrape that the session's Prometheus reports as up."""

from __future__ import annotations

import asyncpg
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import start_http_server

from tests.fixtures.postgres import PostgresServer
from tests.fixtures.prometheus import PrometheusServer
from tests.fixtures.services import free_port


@pytest.mark.postgres
async def test_asyncpg_query_against_real_postgres(postgres_server: PostgresServer) -> None:
    connection = await asyncpg.connect(postgres_server.dsn)
    try:
        version = await connection.fetchval("SHOW server_version")
        total = await connection.fetchval("SELECT $1::int + $2::int", 40, 2)
    finally:
        await connection.close()
    assert total == 42
    assert version.split(".")[0].isdigit()


@pytest.mark.prometheus
def test_prometheus_scrapes_an_opentelemetry_endpoint(
    prometheus_server: PrometheusServer,
) -> None:
    reader = PrometheusMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1")
    try:
        counter = provider.get_meter("test").create_counter(
            "discord.gateway.events", unit="{event}", description="events received"
        )
        counter.add(3, {"discord.gateway.event": "MESSAGE_CREATE"})
        address = f"127.0.0.1:{port}"
        prometheus_server.add_target(address)
        up = prometheus_server.wait_for(f'up{{target="{address}"}} == 1')
        assert up[0]["value"][1] == "1"
        series = prometheus_server.wait_for(f'discord_gateway_events_total{{target="{address}"}}')
        assert series[0]["metric"]["discord_gateway_event"] == "MESSAGE_CREATE"
        assert series[0]["value"][1] == "3"
    finally:
        prometheus_server.remove_target(f"127.0.0.1:{port}")
        server.shutdown()
        thread.join(timeout=5)
        provider.shutdown()  # also unregisters the reader's collector
