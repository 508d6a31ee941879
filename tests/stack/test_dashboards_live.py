"""Every Prometheus panel query of every dashboard returns data for a real bot.

A real Prometheus (the session fixture) scrapes examples/bot.py while it runs
tests/stack/scenario-dashboards.yaml through the simulator:

    discord-otel simulate --scenario tests/stack/scenario-dashboards.yaml \\
        -- opentelemetry-instrument python examples/bot.py

with ``OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS`` set, so the bot serves /metrics. The scrape
path gives the same metric and label names as the compose stack's OTLP path (Collector ->
Prometheus OTLP receiver), with one difference: there `job`/`instance` come from
service.namespace/service.name and service.instance.id, here from the scrape config. The
dashboards only filter on `job` and `instance`, through the $service and $instance variables
(substituted with "All"), so the same queries serve both.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.fixtures.postgres import PostgresServer
from tests.fixtures.prometheus import PrometheusServer
from tests.fixtures.services import free_port
from tests.stack.conftest import REPO
from tests.stack.dashboards import DASHBOARDS, load, prometheus_queries, substitute

SCENARIO = Path(__file__).with_name("scenario-dashboards.yaml")
CLI = Path(sys.executable).with_name("discord-otel")
INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")


def _missing_pieces() -> list[str]:
    """What the live test needs from the rest of the project, when it has not landed yet."""
    missing = []
    instrumentors = {ep.name for ep in entry_points(group="opentelemetry_instrumentor")}
    if importlib.util.find_spec("discord_otel.instrumentation") is None or not any(
        "discord" in name for name in instrumentors
    ):
        missing.append(
            "the discord.py instrumentation that emits the discord_* metrics "
            "(discord_otel.instrumentation, registered as an opentelemetry_instrumentor "
            "entry point so opentelemetry-instrument loads it)"
        )
    from discord_otel import cli

    if "simulate" not in cli.build_parser().format_help():
        missing.append("the `discord-otel simulate` subcommand")
    return missing


@pytest.mark.skipif(bool(_missing_pieces()), reason="; ".join(_missing_pieces()) + " not there yet")
def test_every_prometheus_panel_query_returns_data(
    prometheus_server: PrometheusServer, postgres_server: PostgresServer
) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": "dashboard-test-bot",
        "OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS": address,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        "DATABASE_URL": postgres_server.dsn,  # the example bot records pings in PostgreSQL
    }
    prometheus_server.add_target(address)
    started = time.time()
    process = subprocess.Popen(
        [
            str(CLI),
            "simulate",
            "--scenario",
            str(SCENARIO),
            "--",
            str(INSTRUMENT),
            sys.executable,
            str(REPO / "examples" / "bot.py"),
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        prometheus_server.wait_for(
            f'discord_command_duration_seconds_count{{target="{address}"}}', timeout=60
        )
        output, _ = process.communicate(timeout=90)
        assert process.returncode == 0, output
        # Gauges go stale the moment the bot exits, as on a real server when a bot
        # stops: so evaluate every panel while Prometheus still scraped the bot, after
        # the scenario's final steps (it ends with a sleep).
        time.sleep(2)  # the scrape that finds the bot gone
        history = prometheus_server.api(
            "query_range",
            query=f'up{{target="{address}"}}',
            start=f"{started - 5:.3f}",
            end=f"{time.time():.3f}",
            step="0.5",
        )["result"]
        alive = [float(t) for series in history for t, value in series["values"] if value == "1"]
        assert alive, f"Prometheus never scraped the bot: {history}"
        # The last successful scrape can land while the bot shuts down, after its
        # gauges stopped reporting (its client closed) and before /metrics did: a
        # panel has data if it has some at one of the times the bot was up, latest first.
        alive_at = sorted(set(alive), reverse=True)
        empty = []
        for path in DASHBOARDS:
            for title, expr in prometheus_queries(load(path)):
                query = substitute(expr)
                if not any(prometheus_server.query(query, at=at) for at in alive_at):
                    empty.append(f"{path.stem} / {title}: {expr}")
        assert not empty, "panel queries without data:\n" + "\n".join(empty)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        prometheus_server.remove_target(address)
