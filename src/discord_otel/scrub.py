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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, Status

from discord_otel.span_fields import reads_fields_directly

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
generation = 0
"""Incremented by each new secret: whoever caches scrubbed text forgets it then."""

# Memoised scrub_text results of strings up to _CACHEABLE_LENGTH characters;
# emptied when it reaches _CACHE_LIMIT entries (bounded memory, and unique
# strings such as log messages cannot grow it). "" stands for "unchanged": a
# scrubbed string is never empty, and the caller then gets its own object back.
_CACHE_LIMIT = 4096
_CACHEABLE_LENGTH = 256
_cache: dict[str, str] = {}


def register_secret(value: str | None) -> None:
    """Never export ``value`` (e.g. the bot token), wherever it appears."""
    global _literals, _cache, generation
    if not value or len(value) < 8:  # short values would redact ordinary words
        return
    with _lock:
        if value in _literals:
            return
        # _literals before _cache, and scrub_text reads them in the other order:
        # a result computed with the old literals only lands in a discarded dict.
        _literals = _literals | {value}
        _cache = {}
        generation += 1


def literal_secrets() -> frozenset[str]:
    """The secrets registered so far (each redacted wherever it appears)."""
    return _literals


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


def scrub_span(span: ReadableSpan) -> ReadableSpan:
    """The span itself, or a copy with every secret redacted (its name, the values
    of its attributes and of its events' and links' attributes, its status
    description)."""
    # Runs on every exported span: each property below builds a new object
    # (a mapping proxy, a tuple), so each is read once, and only when needed;
    # where they are the stock accessors, the fields themselves are read.
    direct = reads_fields_directly(type(span))
    s: Any = span
    name = s._name if direct else span.name
    clean_name = scrub_text(name) if isinstance(name, str) else name
    raw_attributes = s._attributes if direct else span.attributes
    if type(raw_attributes) is BoundedAttributes:  # its own dict: no ABC items view
        raw_attributes = raw_attributes._dict
    attributes = scrub_attributes(raw_attributes)
    span_events = s._events if direct else span.events
    events = _scrub_each(span_events, _rebuilt_event) if span_events else None
    span_links = s._links if direct else span.links
    links = _scrub_each(span_links, _rebuilt_link) if span_links else None
    status = s._status if direct else span.status
    description = status.description
    clean_description = (
        scrub_text(description) if isinstance(description, str) and description else description
    )
    if (
        clean_name is name
        and attributes is None
        and events is None
        and links is None
        and clean_description == description
    ):
        return span
    return ReadableSpan(
        name=clean_name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes if attributes is not None else span.attributes,
        events=events if events is not None else span_events,
        links=links if links is not None else span.links,
        kind=span.kind,
        status=Status(status.status_code, clean_description),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrub_each(
    items: Sequence[Any], rebuild: Callable[[Any, dict[str, Any]], Any]
) -> list[Any] | None:
    """``items`` (events or links) with their attributes scrubbed, or None if none changed."""
    clean_items = None
    for index, item in enumerate(items):
        clean = scrub_attributes(item.attributes)
        if clean is not None:
            if clean_items is None:
                clean_items = list(items)
            clean_items[index] = rebuild(item, clean)
    return clean_items


def _rebuilt_event(event: Event, attributes: dict[str, Any]) -> Event:
    return Event(event.name, attributes, event.timestamp)


def _rebuilt_link(link: Link, attributes: dict[str, Any]) -> Link:
    return Link(link.context, attributes)


register_environment_secrets()
