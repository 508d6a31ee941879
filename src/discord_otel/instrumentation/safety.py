"""The "never hurt the bot" guard.

An internal failure of the instrumentation is logged once per site (a code
location named by a literal, so the set of reported sites is bounded) and then
swallowed: it must never reach discord.py (an exception in a gateway parser
kills ``Client.start``) nor change what the bot's own code sees.
"""

from __future__ import annotations

import logging

logger = logging.getLogger("discord_otel.instrumentation")

_reported: set[str] = set()


def report(site: str) -> None:
    """Call from an ``except`` block: log the current exception once for ``site``."""
    if site in _reported:
        return
    _reported.add(site)
    logger.warning(
        "discord-otel: internal error in %s was ignored (reported once per site)",
        site,
        exc_info=True,
    )


def reset() -> None:
    """Forget what was reported (tests)."""
    _reported.clear()
