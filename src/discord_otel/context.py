"""Put the current Discord context on your own spans and log records.

Inside a listener, command, component or task handled by discord-otel::

    from discord_otel import set_discord_context

    with tracer.start_as_current_span("charge card"):
        set_discord_context()             # guild, channel, command on this span

    log.info("charged", extra=set_discord_context(span=None))  # ... and on a log record

The attributes are the same ones discord-otel puts on its own spans
(``discord.guild.id``, ``discord.channel.id``, ``discord.command.name``, and
``discord.user.id`` only when that capture is enabled). Outside any Discord
handler it returns ``{}`` and changes nothing.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.util import types

from discord_otel import semconv

_KEYS = (semconv.GUILD_ID, semconv.CHANNEL_ID, semconv.COMMAND_NAME, semconv.USER_ID)


def current_discord_attributes() -> dict[str, types.AttributeValue]:
    """The Discord context of the running handler (innermost value of each key wins)."""
    try:
        from discord_otel.instrumentation.handlers import innermost_span
    except Exception:  # discord.py not importable
        return {}
    span = innermost_span()
    found: dict[str, types.AttributeValue] = {}
    while span is not None:
        attributes = span.discord_attributes()
        for key in _KEYS:
            if key not in found and key in attributes:
                found[key] = attributes[key]
        span = span.parent
    return found


def set_discord_context(span: Any = None) -> dict[str, types.AttributeValue]:
    """Add the current Discord context to ``span`` (the current span by default).

    Returns the attributes, e.g. to pass as ``extra=`` to a logging call. A
    span that is not recording is left alone.
    """
    attributes = current_discord_attributes()
    if not attributes:
        return attributes
    target = span if span is not None else trace.get_current_span()
    try:
        if target.is_recording():
            target.set_attributes(attributes)
    except Exception:
        pass
    return attributes
