"""Names of discord-otel's own environment variables (``OTEL_PYTHON_DISCORD_*``).

Each is documented in the README's configuration table; their defaults and
parsing live in :mod:`discord_otel.config`, the only module that reads them.
"""

from __future__ import annotations

from typing import Final

OTEL_PYTHON_DISCORD_UNTRACED_EVENTS: Final = "OTEL_PYTHON_DISCORD_UNTRACED_EVENTS"
"""Comma-separated gateway events that are counted but never get a span."""

OTEL_PYTHON_DISCORD_CAPTURE_USER_ID: Final = "OTEL_PYTHON_DISCORD_CAPTURE_USER_ID"
"""``true`` to put the acting user's ID on spans (off: user IDs are personal data)."""

OTEL_PYTHON_DISCORD_CAPTURE_MESSAGE_CONTENT: Final = "OTEL_PYTHON_DISCORD_CAPTURE_MESSAGE_CONTENT"
"""``true`` to put message content on spans."""

OTEL_PYTHON_DISCORD_CAPTURE_COMMAND_OPTIONS: Final = "OTEL_PYTHON_DISCORD_CAPTURE_COMMAND_OPTIONS"
"""``true`` to put command option values on spans."""

OTEL_PYTHON_DISCORD_CAPTURE_SQL_PARAMETERS: Final = "OTEL_PYTHON_DISCORD_CAPTURE_SQL_PARAMETERS"
"""``true`` to let the asyncpg instrumentation record query parameters."""

OTEL_PYTHON_DISCORD_EVENT_LOOP_LAG_INTERVAL: Final = "OTEL_PYTHON_DISCORD_EVENT_LOOP_LAG_INTERVAL"
"""Seconds between two probes of the event loop's lag."""

OTEL_PYTHON_DISCORD_SYSTEM_METRICS: Final = "OTEL_PYTHON_DISCORD_SYSTEM_METRICS"
"""``preset`` (process and CPython runtime), ``all``, or ``off``."""

OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS: Final = "OTEL_PYTHON_DISCORD_PROMETHEUS_ADDRESS"
"""``host:port`` for a Prometheus scrape endpoint; unset: none is served."""

OTEL_PYTHON_DISCORD_HEALTH_ADDRESS: Final = "OTEL_PYTHON_DISCORD_HEALTH_ADDRESS"
"""``host:port`` for the ``/livez`` and ``/readyz`` endpoints; unset: none is served."""

OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT: Final = "OTEL_PYTHON_DISCORD_SHUTDOWN_TIMEOUT"
"""Seconds the providers get to flush and shut down when the bot stops."""

OTEL_PYTHON_DISCORD_GC_FREEZE: Final = "OTEL_PYTHON_DISCORD_GC_FREEZE"
"""``true`` to move the objects that exist once instrumentation is set up (the
OpenTelemetry SDK, exporters, discord.py's modules) out of the garbage
collector's scans (``gc.freeze()``), so they don't slow every collection."""

OTEL_PYTHON_DISCORD_COMPILED: Final = "OTEL_PYTHON_DISCORD_COMPILED"
"""``false`` to run the pure-Python code only, even where the install built the
compiled halves (``discord_otel._otlp_speedups``: the OTLP span encoder;
``discord_otel._gateway_speedups``: the gateway parsers, listener scheduling and
runs, and untraced commands and REST calls)."""

DISCORD_OTEL_SIMULATOR_URL: Final = "DISCORD_OTEL_SIMULATOR_URL"
"""Set by ``discord-otel simulate`` for its child: the simulator's base URL.

When present, discord.py's REST base and gateway URL are pointed at it."""
