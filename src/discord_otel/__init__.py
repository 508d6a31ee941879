"""OpenTelemetry instrumentation distribution for discord.py bots.

Run a bot as ``opentelemetry-instrument python bot.py`` and its gateway events,
listeners, commands, interactions, Discord REST calls and asyncpg queries become
OpenTelemetry spans, metrics and logs that share trace IDs.

The public names are imported lazily, so ``import discord_otel`` stays cheap and
does not pull in the SDK or discord.py until they are used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from discord_otel.version import __version__

if TYPE_CHECKING:  # each public name's module, for type checkers (add as they land)
    from discord_otel.configuration import configure
    from discord_otel.context import set_discord_context
    from discord_otel.instrumentation import DiscordInstrumentor

# public name -> module that defines it
_LAZY = {
    "DiscordInstrumentor": "discord_otel.instrumentation",
    "configure": "discord_otel.configuration",
    "set_discord_context": "discord_otel.context",
}

__all__ = ["DiscordInstrumentor", "__version__", "configure", "set_discord_context"]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'discord_otel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value
