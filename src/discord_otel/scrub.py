"""Keeping Discord secrets out of telemetry.

The bot token, webhook tokens and interaction tokens must never be exported:
not in a span, a metric, a log body or a URL. Tokens appear in URL paths
(``/webhooks/{id}/{token}``, ``/interactions/{id}/{token}/callback``), in
``Authorization: Bot ...`` headers, and as literal values discord.py may log.

:func:`scrub_text` replaces every known secret in a string with ``REDACTED``;
:func:`scrub_url` does the same for a URL (the aiohttp-client instrumentation's
``url_filter``). Literal secrets (the bot's token, read from the usual
environment variables or registered by the instrumentation when the bot logs
in) are added with :func:`register_secret`.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from typing import Any

REDACTED = "REDACTED"

# Environment variables bots conventionally keep their token in.
TOKEN_ENVIRONMENT_VARIABLES = ("DISCORD_TOKEN", "DISCORD_BOT_TOKEN", "BOT_TOKEN", "TOKEN")

# A token in a URL path: /webhooks/{webhook or application id}/{token}[/...]
# and /interactions/{interaction id}/{token}/callback.
_PATH_TOKEN = re.compile(r"(/(?:webhooks|interactions)/\d+/)([^/?#\s'\"<>]+)")
# A bot token: base64(user id) . timestamp . HMAC.
_BOT_TOKEN = re.compile(r"\b[A-Za-z\d_-]{23,28}\.[A-Za-z\d_-]{6,7}\.[A-Za-z\d_-]{27,40}\b")
# An Authorization header value.
_AUTH_HEADER = re.compile(r"((?:Bot|Bearer)\s+)[A-Za-z\d_.\-]{16,}")
# Cheap pre-check: only strings containing one of these can hold a pattern above.
_HINTS = ("webhooks/", "interactions/", "Bot ", "Bearer ", ".")

_lock = threading.Lock()
_literals: frozenset[str] = frozenset()


def register_secret(value: str | None) -> None:
    """Never export ``value`` (e.g. the bot token), wherever it appears."""
    global _literals
    if not value or len(value) < 8:  # short values would redact ordinary words
        return
    with _lock:
        _literals = _literals | {value}


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> None:
    source = os.environ if environ is None else environ
    for name in TOKEN_ENVIRONMENT_VARIABLES:
        register_secret(source.get(name))


def scrub_text(text: str) -> str:
    """``text`` with every secret replaced by ``REDACTED`` (the same object if none)."""
    for literal in _literals:
        if literal in text:
            text = text.replace(literal, REDACTED)
    if not any(hint in text for hint in _HINTS):
        return text
    if "/" in text:
        text = _PATH_TOKEN.sub(r"\1" + REDACTED, text)
    if "Bot " in text or "Bearer " in text:
        text = _AUTH_HEADER.sub(r"\1" + REDACTED, text)
    if "." in text:
        text = _BOT_TOKEN.sub(REDACTED, text)
    return text


def scrub_url(url: Any) -> str:
    """The aiohttp-client ``url_filter``: the URL as a string, tokens redacted."""
    return scrub_text(str(url))


def scrub_value(value: Any) -> Any:
    """Scrub a telemetry attribute value (a string or a sequence of strings)."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (tuple, list)) and any(isinstance(item, str) for item in value):
        return type(value)(scrub_text(item) if isinstance(item, str) else item for item in value)
    return value


def scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A scrubbed copy of ``attributes``, or None when nothing needed scrubbing."""
    if not attributes:
        return None
    changed = False
    result: dict[str, Any] = {}
    for key, value in attributes.items():
        clean = scrub_value(value)
        if clean is not value and clean != value:
            changed = True
        result[key] = clean
    return result if changed else None


register_environment_secrets()
