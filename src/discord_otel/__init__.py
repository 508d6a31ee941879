"""OpenTelemetry instrumentation distribution for discord.py bots.

Run a bot as ``opentelemetry-instrument python bot.py`` and its gateway events,
listeners, commands, interactions, Discord REST calls and asyncpg queries become
OpenTelemetry spans, metrics and logs that share trace IDs.
"""

from discord_otel.version import __version__

__all__ = ["__version__"]
