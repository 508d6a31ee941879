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

Every exported span goes through :func:`scrub_text` for its name and string
attribute values, and those repeat endlessly (route templates, command and
event names), so short strings' results are memoised in a bounded dict that
:func:`register_secret` replaces (a value cached before a secret was known is
scrubbed again).
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

_lock = threading.Lock()
_literals: frozenset[str] = frozenset()

# Memoised scrub_text results of strings up to _CACHEABLE_LENGTH characters;
# emptied when it reaches _CACHE_LIMIT entries (bounded memory, and unique
# strings such as log messages cannot grow it). "" stands for "unchanged": a
# scrubbed string is never empty, and the caller then gets its own object back.
_CACHE_LIMIT = 4096
_CACHEABLE_LENGTH = 256
_cache: dict[str, str] = {}


def register_secret(value: str | None) -> None:
    """Never export ``value`` (e.g. the bot token), wherever it appears."""
    global _literals, _cache
    if not value or len(value) < 8:  # short values would redact ordinary words
        return
    with _lock:
        if value in _literals:
            return
        # _literals before _cache, and scrub_text reads them in the other order:
        # a result computed with the old literals only lands in a discarded dict.
        _literals = _literals | {value}
        _cache = {}


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> None:
    source = os.environ if environ is None else environ
    for name in TOKEN_ENVIRONMENT_VARIABLES:
        register_secret(source.get(name))


def scrub_text(text: str) -> str:
    """``text`` with every secret replaced by ``REDACTED`` (the same object if none)."""
    cache = _cache
    found = cache.get(text)
    if found is not None:
        return found or text
    clean = _scrub(text, _literals)
    if len(text) <= _CACHEABLE_LENGTH:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[text] = "" if clean is text else clean
    return clean


def _scrub(text: str, literals: frozenset[str]) -> str:
    for literal in literals:
        if literal in text:
            text = text.replace(literal, REDACTED)
    # Substring pre-checks: most strings can hold none of the patterns.
    if "webhooks/" in text or "interactions/" in text:
        text = _PATH_TOKEN.sub(r"\1" + REDACTED, text)
    if "Bot " in text or "Bearer " in text:
        text = _AUTH_HEADER.sub(r"\1" + REDACTED, text)
    if "." in text:
        text = _BOT_TOKEN.sub(REDACTED, text)
    return text


def scrub_url(url: Any) -> str:
    """The aiohttp-client ``url_filter``: the URL as a string, tokens redacted."""
    return scrub_text(str(url))


# Attribute value types with nothing to scrub.
_PLAIN = frozenset({int, float, bool})


def scrub_value(value: Any) -> Any:
    """Scrub a telemetry attribute value (a string or a sequence of strings)."""
    kind = type(value)
    if kind is str:
        return scrub_text(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, (tuple, list)) and any(isinstance(item, str) for item in value):
        return type(value)(scrub_text(item) if isinstance(item, str) else item for item in value)
    return value


def scrub_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A scrubbed copy of ``attributes``, or None when nothing needed scrubbing."""
    if not attributes:
        return None
    result: dict[str, Any] | None = None  # copied only when a value changes
    cache = _cache
    for key, value in attributes.items():
        kind = type(value)
        if kind is str:
            found = cache.get(value)  # scrub_text's cache hit, inlined
            if found == "":
                continue
            clean = found if found is not None else scrub_text(value)
        elif kind in _PLAIN:
            continue
        else:
            clean = scrub_value(value)
        if clean is not value and clean != value:
            if result is None:
                result = dict(attributes)
            result[key] = clean
    return result


register_environment_secrets()
