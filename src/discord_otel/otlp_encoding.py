"""A fast OTLP/protobuf span encoder, a drop-in for the exporter's ``encode_spans``.

The stock encoder (``opentelemetry.exporter.otlp.proto.common.trace_encoder``)
builds one protobuf object per span, attribute, value and status, then
serializes the tree: about 20 us per small span, spent in the batch
processor's export thread while it holds the GIL, so the bot pays for it.

A bot's spans are small and repetitive (one resource, a few instrumentation
scopes, the same attribute keys with mostly the same values), so this module
writes the wire format of ``ExportTraceServiceRequest`` directly as bytes and
reuses what repeats:

* the resource and the instrumentation scope, encoded once per object (by
  identity, the object kept alive alongside so its id is not reused);
* each attribute's ``KeyValue``, per ``(key, type(value), value)`` for the
  hashable scalar types, in a bounded cache cleared when full;
* span names and trace states.

Secrets are redacted as the encoder goes (:mod:`discord_otel.scrub`: span
names, attribute values, status descriptions), once per value it caches: a
repeated value costs no scrub at all. The caches are emptied whenever a secret
is registered, so nothing encoded before it can leak it.

The output parses to a message equal to the stock encoder's for the same
spans, scrubbed (``scrub.scrub_span``): same grouping (by resource, then
scope, by equality as the stock ``dict`` does), same order, same fields, the
same attributes skipped (and logged) when a value cannot be encoded. Anything out of the ordinary (a
mapping or ``None`` attribute value, a subclass, a foreign key type) is
handed to the stock per-attribute encoder; anything else unexpected makes the
whole batch go through the stock encoder (after ``scrub_span``), so no span
is ever lost to this module.

The instrumentation's own spans are usually encoded earlier, as they end
(:func:`end_encoder`, in place of the batch processor's ``emit`` where the
exporter encodes here): the encoding is queued instead of the span, made while
the span is still in the ending thread's cache, and the span is freed at once
rather than held in the queue until the export thread gets to it (benchmarks,
issue 6: the export thread's CPU per W2 command about halved). An encoding made
before a secret was registered is checked for it at export, and redacted.

:func:`install` puts :func:`encode_spans` in place of the name
``encode_spans`` in ``opentelemetry.exporter.otlp.proto.http.trace_exporter``,
so ``OTLPSpanExporter.export`` keeps upstream's size limit, retries and
self-metrics; :func:`uninstall` puts the original back.
"""

from __future__ import annotations

import importlib
import logging
import struct
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from typing import Any, Final

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_instrumentation_scope,
    _encode_key_value,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
    encode_spans as _stock_encode_spans,
)
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from discord_otel import scrub
from discord_otel.scrub import scrub_span, scrub_text, scrub_value
from discord_otel.span_fields import DIRECT_TYPES, reads_fields_directly

__all__ = [
    "EncodedSpans",
    "encode_spans",
    "install",
    "installed",
    "scrubs",
    "uninstall",
]

_logger = logging.getLogger(__name__)

HTTP_TRACE_EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"

# Bounds of the caches. The KeyValue cache is cleared when full: values that
# vary (ids) then cost one re-encode of the ones that repeat, never memory.
KEY_VALUE_CACHE_SIZE: Final = 4096
NAME_CACHE_SIZE: Final = 1024
IDENTITY_CACHE_SIZE: Final = 64

_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1
_UINT32_MAX: Final = (1 << 32) - 1
_MASK64: Final = (1 << 64) - 1

_SMALL_VARINTS: Final = tuple(bytes((i,)) for i in range(128))
_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack
# Span fields 7 and 8 (start/end time, fixed64) in one call: tags 0x39 and 0x41.
_pack_times = struct.Struct("<BQBQ").pack

# Span.flags (field 16, fixed32), as the stock ``_span_flags`` computes them:
# SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK (0x100), plus IS_REMOTE (0x200).
_FLAGS_LOCAL: Final = b"\x85\x01\x00\x01\x00\x00"
_FLAGS_REMOTE: Final = b"\x85\x01\x00\x03\x00\x00"
# Link.flags (field 6, fixed32), same values.
_LINK_FLAGS_LOCAL: Final = b"\x35\x00\x01\x00\x00"
_LINK_FLAGS_REMOTE: Final = b"\x35\x00\x03\x00\x00"

# Keyed by id(): the enum members live forever, and an enum's __hash__ is a
# Python-level call, several times dearer than hashing an int.
_KIND_FIELDS: Final = {
    id(SpanKind.INTERNAL): b"\x30\x01",
    id(SpanKind.SERVER): b"\x30\x02",
    id(SpanKind.CLIENT): b"\x30\x03",
    id(SpanKind.PRODUCER): b"\x30\x04",
    id(SpanKind.CONSUMER): b"\x30\x05",
}
_STATUS_CODES: Final = {id(code): code.value for code in StatusCode}
# Span.status (field 15) with no description, by id(status code).
_STATUS_FIELDS: Final = {
    id(code): b"\x7a\x02\x18" + bytes((code.value,)) if code.value else b"\x7a\x00"
    for code in StatusCode
}

# Attribute value types whose encoded KeyValue is cached. Floats are left out:
# they rarely repeat (durations) and 0.0 == -0.0 would share an entry.
_CACHED_TYPES: Final = frozenset((str, int, bool, bytes))

# The same kind and plain-status fields as parallel tuples, for the compiled half.
_KINDS: Final = tuple(SpanKind)
_KIND_FIELD_VALUES: Final = tuple(_KIND_FIELDS[id(kind)] for kind in _KINDS)
_STATUS_CODE_OBJECTS: Final = tuple(StatusCode)
_STATUS_FIELD_VALUES: Final = tuple(_STATUS_FIELDS[id(code)] for code in _STATUS_CODE_OBJECTS)


def _load_speedups() -> Any:
    """The compiled half (``discord_otel._otlp_speedups``, built when the package
    is installed where a C compiler is found), or None: the Python code alone
    then does all the work, with the same output."""
    try:
        from discord_otel import _otlp_speedups
    except ImportError:
        return None
    return _otlp_speedups


_built: Any = _load_speedups()
speedups: Any = _built
"""The compiled half in use, or None: :func:`install` follows the
``OTEL_PYTHON_DISCORD_COMPILED`` setting (tests set it directly)."""

# What an end encoder queues in place of a span (see end_encoder); a type no
# span ever has where the compiled half is not built.
_ENCODED_SPAN: Any = getattr(_built, "EncodedSpan", None) or type("_NoEncodedSpan", (), {})


class _Unsupported(Exception):
    """The fast path declines this input; the stock encoder will take it."""


def _varint(value: int) -> bytes:
    """Base-128 varint of a non-negative int (lengths, counts, int64 as uint64)."""
    if value < 0x80:
        return _SMALL_VARINTS[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _length_delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def _string_field(tag: bytes, value: Any) -> bytes:
    """A proto3 string field: omitted when empty, as protobuf does."""
    if value is None:
        return b""
    if type(value) is not str:
        raise _Unsupported(f"not a str: {type(value)!r}")
    return _length_delimited(tag, value.encode("utf-8")) if value else b""


def _uint32_field(tag: bytes, value: Any) -> bytes:
    if not value:
        return b""
    if type(value) is not int or not 0 <= value <= _UINT32_MAX:
        raise _Unsupported(f"not a uint32: {value!r}")
    return tag + _varint(value)


# --- attributes --------------------------------------------------------------


def _any_value(value: Any) -> bytes:
    """The AnyValue message (unprefixed) for the exact builtin types, as the stock
    ``_encode_value``; raises for anything else (the caller then asks the stock)."""
    kind = type(value)
    if kind is str:
        data: bytes = value.encode("utf-8")
        return b"\x0a" + _varint(len(data)) + data
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Unsupported("int64 out of range")
        return b"\x18" + _varint(value & _MASK64)
    if kind is float:
        return b"\x21" + _pack_double(value)
    if kind is bytes:
        raw: bytes = value
        return b"\x3a" + _varint(len(raw)) + raw
    if kind is tuple or kind is list:
        items = b"".join([_length_delimited(b"\x0a", _any_value(item)) for item in value])
        return b"\x2a" + _varint(len(items)) + items
    raise _Unsupported(f"value type {kind!r}")


def _key_value(key: Any, value: Any) -> bytes | None:
    """The length-prefixed KeyValue message of the scrubbed ``value``, or None when
    the stock encoder cannot encode it either (it then skips the attribute and
    logs, so do we)."""
    body: bytes
    value = scrub_value(value)
    if type(key) is str:
        try:
            encoded_key = key.encode("utf-8")
            body = (
                (b"\x0a" + _varint(len(encoded_key)) + encoded_key if encoded_key else b"")
                + b"\x12"
                + _length_delimited(b"", _any_value(value))
            )
            return _varint(len(body)) + body
        except Exception:
            pass
    # Mappings, None, subclasses, out-of-range ints, unencodable strings: the
    # stock encoder's own result (or its refusal) is the reference.
    try:
        body = _encode_key_value(key, value).SerializePartialToString()
    except Exception as error:
        _logger.exception("Failed to encode key %s: %s", key, error)
        return None
    return _varint(len(body)) + body


_key_values: dict[tuple[Any, type, Any], bytes] = {}


def _cached_key_value(key: Any, kind: type, value: Any) -> bytes | None:
    encoded = _key_value(key, value)
    if encoded is not None:
        if len(_key_values) >= KEY_VALUE_CACHE_SIZE:
            _key_values.clear()
        _key_values[(key, kind, value)] = encoded
    return encoded


def _attributes(attributes: Attributes, tag: bytes) -> bytes:
    """The repeated KeyValue field ``tag`` for an attributes mapping (or None)."""
    if not attributes:
        return b""
    parts = []
    cache = _key_values
    for key, value in attributes.items():
        kind = type(value)
        if kind in _CACHED_TYPES:
            encoded = cache.get((key, kind, value)) or _cached_key_value(key, kind, value)
        else:
            encoded = _key_value(key, value)
        if encoded is not None:
            parts.append(encoded)
    return tag + tag.join(parts) if parts else b""


# The cached encodings above and the names below are of scrubbed values, made
# with the secrets known at scrub.generation == _scrubbed_generation.
_scrubbed_generation = scrub.generation


def _forget_scrubbed() -> None:
    global _scrubbed_generation
    _scrubbed_generation = scrub.generation  # read first: a later secret clears again
    _key_values.clear()
    _names.clear()


# --- repeated pieces, cached -------------------------------------------------

_names: dict[str, bytes] = {}


def _name_field(name: Any) -> bytes:
    """Span.name (field 5), scrubbed."""
    if type(name) is not str:
        raise _Unsupported(f"span name type {type(name)!r}")
    encoded = _string_field(b"\x2a", scrub_text(name))
    if len(_names) >= NAME_CACHE_SIZE:
        _names.clear()
    _names[name] = encoded
    return encoded


_trace_states: dict[int, tuple[Any, bytes]] = {}
_NO_TRACE_STATE: Final = object()  # no span's trace state: the first always looked up


def _trace_state_field(trace_state: Any) -> bytes:
    """Span.trace_state (field 3), as the stock ``_encode_trace_state``."""
    entry = _trace_states.get(id(trace_state))
    if entry is not None and entry[0] is trace_state:
        return entry[1]
    if trace_state is None:
        encoded = b""
    else:
        encoded = _string_field(
            b"\x1a", ",".join([f"{key}={value}" for key, value in trace_state.items()])
        )
    if len(_trace_states) >= IDENTITY_CACHE_SIZE:
        _trace_states.clear()
    _trace_states[id(trace_state)] = (trace_state, encoded)
    return encoded


# id(resource) -> (resource, ResourceSpans.resource field, ResourceSpans.schema_url field)
_resources: dict[int, tuple[Any, bytes, bytes]] = {}
# id(scope) -> (scope, ScopeSpans.scope field, ScopeSpans.schema_url field)
_scopes: dict[int, tuple[Any, bytes, bytes]] = {}


def _resource_fields(resource: Any) -> tuple[bytes, bytes]:
    entry = _resources.get(id(resource))
    if entry is None or entry[0] is not resource:
        # Encoded once per Resource object by the stock code: exact by construction.
        head = _length_delimited(b"\x0a", _encode_resource(resource).SerializePartialToString())
        entry = (resource, head, _string_field(b"\x1a", resource.schema_url))
        if len(_resources) >= IDENTITY_CACHE_SIZE:
            _resources.clear()
        _resources[id(resource)] = entry
    return entry[1], entry[2]


def _scope_fields(scope: Any) -> tuple[bytes, bytes]:
    entry = _scopes.get(id(scope))
    if entry is None or entry[0] is not scope:
        head = _length_delimited(
            b"\x0a", _encode_instrumentation_scope(scope).SerializePartialToString()
        )
        tail = _string_field(b"\x1a", scope.schema_url if scope else None)
        entry = (scope, head, tail)
        if len(_scopes) >= IDENTITY_CACHE_SIZE:
            _scopes.clear()
        _scopes[id(scope)] = entry
    return entry[1], entry[2]


# --- events, links, status ---------------------------------------------------


def _events_field(events: Iterable[Any]) -> bytes:
    """Span.events (field 11), as the stock ``_encode_events``."""
    out = []
    for event in events:
        if type(event) is Event:  # the SDK's: its fields, without the properties' frames
            timestamp = event._timestamp
            attributes = event._attributes
            if type(attributes) is BoundedAttributes:
                dropped = attributes.dropped
            else:
                dropped = 0 if type(attributes) in _PLAIN_CONTAINERS else event.dropped_attributes
            name = event._name
        else:
            timestamp = event.timestamp
            attributes = event.attributes
            dropped = event.dropped_attributes
            name = event.name
        body = (
            (b"\x09" + _pack_fixed64(timestamp) if timestamp else b"")
            + _string_field(b"\x12", name)
            + _attributes(attributes, b"\x1a")
            + _uint32_field(b"\x20", dropped)
        )
        out.append(_length_delimited(b"\x5a", body))
    return b"".join(out)


def _links_field(links: Iterable[Any]) -> bytes:
    """Span.links (field 13), as the stock ``_encode_links`` (no trace_state)."""
    out = []
    for link in links:
        context = link.context
        body = (
            b"\x0a\x10"
            + context.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + context.span_id.to_bytes(8, "big")
            + _attributes(link.attributes, b"\x22")
            + _uint32_field(b"\x28", link.dropped_attributes)
            + (_LINK_FLAGS_REMOTE if context and context.is_remote else _LINK_FLAGS_LOCAL)
        )
        out.append(_length_delimited(b"\x6a", body))
    return b"".join(out)


def _status_field(status: Any) -> bytes:
    """Span.status (field 15), as the stock ``_encode_status``."""
    if status is None:
        return b""
    code = status.status_code
    description = status.description
    if description is None:
        return _STATUS_FIELDS[id(code)]
    value = _STATUS_CODES[id(code)]
    if type(description) is str:
        description = scrub_text(description)
    body = _string_field(b"\x12", description) + (b"\x18" + _varint(value) if value else b"")
    return _length_delimited(b"\x7a", body)


# --- spans -------------------------------------------------------------------

# containers that are never a BoundedAttributes / BoundedList (so drop nothing)
_PLAIN_CONTAINERS: Final = frozenset({dict, tuple, list, type(None)})


def _compiled_helpers() -> tuple[Any, ...]:
    """This module's caches and helpers, as the compiled half takes them (after the
    spans and the scrub generation: see encode_pieces in _otlp_speedups.c)."""
    return (
        DIRECT_TYPES,
        _names,
        _key_values,
        SpanContext,
        BoundedAttributes,
        BoundedList,
        Event,
        Status,
        _KINDS,
        _KIND_FIELD_VALUES,
        _STATUS_CODE_OBJECTS,
        _STATUS_FIELD_VALUES,
        _name_field,
        _cached_key_value,
        _key_value,
        _trace_state_field,
        reads_fields_directly,
    )


def _encode(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ExportTraceServiceRequest for ``spans``."""
    # Grouping as the stock encoder: dicts keyed by Resource, then by scope (or
    # None), i.e. by their __eq__/__hash__, first-seen order. Resolving a
    # (resource, scope) pair of objects to its list costs those hashes once
    # per distinct pair of objects per batch, not once per span.
    groups: dict[Any, dict[Any, list[bytes]]] = {}
    by_ids: dict[tuple[int, int], list[bytes]] = {}
    last_resource: Any = None
    last_scope: Any = None
    target: list[bytes] = []
    have_target = False

    key_values = _key_values
    cached_types = _CACHED_TYPES
    names = _names
    kinds = _KIND_FIELDS
    status_fields = _STATUS_FIELDS
    trace_states = _trace_states
    small = _SMALL_VARINTS
    bounded_attributes = BoundedAttributes
    bounded_list: Any = BoundedList  # Any: the fast path reads its private deque
    span_context_type = SpanContext
    plain_containers = _PLAIN_CONTAINERS
    direct_types = DIRECT_TYPES
    status_type = Status
    last_trace_state: Any = _NO_TRACE_STATE
    trace_state_field = b""

    events: Any
    links: Any
    pieces: Iterable[bytes | None] = repeat(None)
    compiled = speedups
    if compiled is not None:
        # The usual span, encoded in C with this module's caches and helpers; None
        # where the loop below must do it (see _otlp_speedups.c).
        if scrub.generation != _scrubbed_generation:
            _forget_scrubbed()
        pieces = compiled.encode_pieces(spans, scrub, _scrubbed_generation, *_compiled_helpers())
    for span, piece in zip(spans, pieces, strict=False):  # pieces may be repeat(None)
        s: Any = span
        if piece is not None:  # encoded by the compiled half: a direct type
            resource = s._resource
            scope = s._instrumentation_scope
        elif type(s) is _ENCODED_SPAN:  # encoded as it ended, under an earlier scrub generation
            piece = _without_new_secrets(s.piece)
            resource = s._resource
            scope = s._instrumentation_scope
        else:
            if scrub.generation != _scrubbed_generation:
                _forget_scrubbed()  # a secret registered since: cached encodings may hold it
            if direct_types.get(type(s)) or reads_fields_directly(type(s)):
                context = s._context
                name = s._name
                kind = s._kind
                parent = s._parent
                start = s._start_time
                end = s._end_time
                attributes = s._attributes
                # The stock dropped_* properties count only in a BoundedAttributes /
                # BoundedList (an ABC isinstance each): a plain container drops nothing.
                if type(attributes) is bounded_attributes:
                    items: Iterable[tuple[Any, Any]] = attributes._dict.items()
                    dropped_attributes = attributes.dropped
                else:
                    items = attributes.items() if attributes else ()
                    dropped_attributes = (
                        0 if type(attributes) in plain_containers else s.dropped_attributes
                    )
                events = s._events
                if type(events) is bounded_list:
                    dropped_events = events.dropped
                    events = events._dq
                else:
                    dropped_events = 0 if type(events) in plain_containers else s.dropped_events
                links = s._links
                if type(links) is bounded_list:
                    dropped_links = links.dropped
                    links = links._dq
                else:
                    dropped_links = 0 if type(links) in plain_containers else s.dropped_links
                status = s._status
                resource = s._resource
                scope = s._instrumentation_scope
            else:
                # Unknown subclass: only the public API, exactly what the stock reads.
                context = s.get_span_context()
                name = s.name
                kind = s.kind
                parent = s.parent
                start = s.start_time
                end = s.end_time
                attributes = s.attributes
                items = attributes.items() if attributes else ()
                dropped_attributes = s.dropped_attributes
                events = s.events
                dropped_events = s.dropped_events
                links = s.links
                dropped_links = s.dropped_links
                status = s.status
                resource = s.resource
                scope = s.instrumentation_scope

            if type(context) is span_context_type:
                trace_id, span_id, _, _, trace_state, _ = context
            else:
                trace_id = context.trace_id
                span_id = context.span_id
                trace_state = context.trace_state
            if trace_state is not last_trace_state:  # usually one object throughout
                entry = trace_states.get(id(trace_state))
                trace_state_field = (
                    entry[1]
                    if entry is not None and entry[0] is trace_state
                    else _trace_state_field(trace_state)
                )
                last_trace_state = trace_state
            if parent:
                if type(parent) is span_context_type:
                    parent_id = parent[1]
                    remote = parent[2]
                else:
                    parent_id = parent.span_id
                    remote = parent.is_remote
                parent_field = b"\x22\x08" + parent_id.to_bytes(8, "big")
                flags = _FLAGS_REMOTE if remote else _FLAGS_LOCAL
            else:
                parent_field = b""
                flags = _FLAGS_LOCAL

            if start and end:
                times = _pack_times(0x39, start, 0x41, end)
            else:
                times = (b"\x39" + _pack_fixed64(start) if start else b"") + (
                    b"\x41" + _pack_fixed64(end) if end else b""
                )

            # Span.attributes (field 9); the hot loop of the whole encoder.
            parts = []
            for key, value in items:
                value_type = type(value)
                if value_type in cached_types:
                    encoded = key_values.get((key, value_type, value)) or _cached_key_value(
                        key, value_type, value
                    )
                else:
                    encoded = _key_value(key, value)
                if encoded is not None:
                    parts.append(encoded)

            status_code: Any
            if type(status) is status_type:  # its two properties, read without their frames
                status_code = status._status_code
                plain_status = status._description is None
            else:
                status_code = status.status_code if status is not None else None
                plain_status = status_code is not None and status.description is None
            body = b"".join(
                (
                    b"\x0a\x10",
                    trace_id.to_bytes(16, "big"),
                    b"\x12\x08",
                    span_id.to_bytes(8, "big"),
                    trace_state_field,
                    parent_field,
                    names.get(name) or _name_field(name),
                    kinds[id(kind)],
                    times,
                    b"\x4a" + b"\x4a".join(parts) if parts else b"",
                    _uint32_field(b"\x50", dropped_attributes) if dropped_attributes else b"",
                    _events_field(events) if events else b"",
                    _uint32_field(b"\x60", dropped_events) if dropped_events else b"",
                    _links_field(links) if links else b"",
                    _uint32_field(b"\x70", dropped_links) if dropped_links else b"",
                    status_fields[id(status_code)] if plain_status else _status_field(status),
                    flags,
                )
            )
            size = len(body)
            piece = b"\x12" + (small[size] if size < 0x80 else _varint(size)) + body

        if not have_target or resource is not last_resource or scope is not last_scope:
            target = _group(groups, by_ids, resource, scope)
            last_resource, last_scope, have_target = resource, scope, True
        target.append(piece)

    out = []
    for resource, scopes in groups.items():
        resource_head, resource_tail = _resource_fields(resource)
        scope_spans = []
        for scope, encoded_spans in scopes.items():
            scope_head, scope_tail = _scope_fields(scope)
            scope_spans.append(
                _length_delimited(b"\x12", scope_head + b"".join(encoded_spans) + scope_tail)
            )
        out.append(
            _length_delimited(b"\x0a", resource_head + b"".join(scope_spans) + resource_tail)
        )
    return b"".join(out)


def _group(
    groups: dict[Any, dict[Any, list[bytes]]],
    by_ids: dict[tuple[int, int], list[bytes]],
    resource: Any,
    scope: Any,
) -> list[bytes]:
    """The list collecting the spans of (resource, scope), grouped as the stock does."""
    ids = (id(resource), id(scope))
    target = by_ids.get(ids)
    if target is None:
        scopes = groups.get(resource)
        if scopes is None:
            scopes = groups[resource] = {}
        scope_key = scope or None
        target = scopes.get(scope_key)
        if target is None:
            target = scopes[scope_key] = []
        # The spans keep both objects alive for the batch: their ids are stable.
        by_ids[ids] = target
    return target


# --- spans encoded as they end -------------------------------------------------


def _without_new_secrets(piece: bytes) -> bytes:
    """An end encoder's piece, made before the latest secrets were registered,
    with any of them it holds redacted (rare: a secret registered between a
    span's end and its export). The regular expressions were applied when it was
    made; only the literal secrets can be new, and they appear verbatim."""
    if not any(secret.encode("utf-8") in piece for secret in scrub.literal_secrets()):
        return piece
    from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans

    # The piece is a ScopeSpans holding only its spans field: parsed and written as one.
    holder = ScopeSpans.FromString(piece)
    _scrub_message(holder.spans[0])
    rescrubbed: bytes = holder.SerializeToString()
    return rescrubbed


def _scrub_message(message: Any) -> None:
    """Redact secrets from every string a Span message holds (name, attribute
    values, events, links, status), as scrub_span does for a span."""
    message.name = scrub_text(message.name)
    _scrub_key_values(message.attributes)
    for event in message.events:
        event.name = scrub_text(event.name)
        _scrub_key_values(event.attributes)
    for link in message.links:
        _scrub_key_values(link.attributes)
    message.status.message = scrub_text(message.status.message)


def _scrub_key_values(key_values: Any) -> None:
    for key_value in key_values:
        _scrub_any_value(key_value.value)


def _scrub_any_value(value: Any) -> None:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        value.string_value = scrub_text(value.string_value)
    elif kind == "array_value":
        for item in value.array_value.values:
            _scrub_any_value(item)
    elif kind == "kvlist_value":
        _scrub_key_values(value.kvlist_value.values)


_end_encoders: list[Any] = []


def end_encoder(emit: Callable[[Any], None]) -> Callable[[Any], None] | None:
    """A callable to use in place of a batch span processor's ``emit`` for the
    instrumentation's own spans, or None where the compiled half is not in use.

    It encodes each span as it ends and queues the encoding (an ``EncodedSpan``)
    in place of the span: the encoding is made while what it reads is still in
    the ending thread's cache, and the span itself is freed as soon as the
    instrumentation lets go of it instead of waiting in the queue for the
    export thread. Only for a processor whose exporter encodes with
    :func:`encode_spans` (which takes the encodings as they are);
    :func:`uninstall` turns every such encoder off."""
    compiled = speedups  # None where the compiled half is off (OTEL_PYTHON_DISCORD_COMPILED)
    if compiled is None or not installed():
        return None
    encoder = compiled.EndEncoder(emit, scrub, sys.modules[__name__], *_compiled_helpers())
    with _install_lock:
        _end_encoders[:] = [e for e in _end_encoders if e.enabled]
        _end_encoders.append(encoder)
    return encoder  # type: ignore[no-any-return]


def is_encoded(item: object) -> bool:
    """Whether ``item``, taken from a span queue, is an end encoder's encoding."""
    return type(item) is _ENCODED_SPAN


# --- public API --------------------------------------------------------------


class EncodedSpans:
    """A serialized ``ExportTraceServiceRequest``, standing in for the pb2 message
    the exporter serializes."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def SerializePartialToString(self, **_: Any) -> bytes:
        return self._data

    def SerializeToString(self, **_: Any) -> bytes:
        return self._data

    def ByteSize(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"EncodedSpans({len(self._data)} bytes)"


_fallback_reported = False


def encode_spans(spans: Sequence[ReadableSpan]) -> EncodedSpans:
    """``spans``, their secrets redacted, as an OTLP ``ExportTraceServiceRequest``:
    equal to what the stock encoder makes of ``[scrub_span(s) for s in spans]``.
    Falls back to exactly that if the fast path fails, so a batch is never lost
    to it (the stock encoder's own errors still propagate, as they would without
    this module)."""
    global _fallback_reported
    try:
        return EncodedSpans(_encode(spans))
    except Exception:
        if not _fallback_reported:
            _fallback_reported = True
            _logger.debug(
                "discord-otel: fast OTLP span encoding failed; using the stock encoder "
                "for that batch (reported once)",
                exc_info=True,
            )
    # Encodings made as spans ended are taken as they are; the others are encoded
    # by the stock encoder. Two serialized requests concatenated are one request
    # holding both's resource_spans (protobuf merges repeated fields).
    encoded = [span for span in spans if type(span) is _ENCODED_SPAN]
    others = [span for span in spans if type(span) is not _ENCODED_SPAN] if encoded else spans
    return EncodedSpans(
        _one_by_one(encoded)
        + _stock_encode_spans([scrub_span(span) for span in others]).SerializePartialToString()
    )


def _one_by_one(items: Sequence[Any]) -> bytes:
    """End encoders' encodings as ResourceSpans of one span each (the fallback's
    way: valid OTLP, only not grouped)."""
    out = []
    for item in items:
        resource_head, resource_tail = _resource_fields(item._resource)
        scope_head, scope_tail = _scope_fields(item._instrumentation_scope)
        scope_spans = scope_head + _without_new_secrets(item.piece) + scope_tail
        out.append(
            _length_delimited(
                b"\x0a", resource_head + _length_delimited(b"\x12", scope_spans) + resource_tail
            )
        )
    return b"".join(out)


_install_lock = threading.Lock()
_original: Callable[..., Any] | None = None


def _exporter_module() -> Any:
    try:
        return importlib.import_module(HTTP_TRACE_EXPORTER)
    except ImportError:
        return None


def install(compiled: bool = True) -> None:
    """Make the OTLP/HTTP span exporter encode with :func:`encode_spans`, with the
    compiled half where it is built unless ``compiled`` is false. Idempotent."""
    global _original, speedups
    speedups = _built if compiled else None
    module = _exporter_module()
    if module is None:
        _logger.debug("discord-otel: %s is not importable; not installed", HTTP_TRACE_EXPORTER)
        return
    with _install_lock:
        current = getattr(module, "encode_spans", None)
        if current is None or current is encode_spans:
            return
        _original = current
        module.encode_spans = encode_spans


def uninstall() -> None:
    """Put the exporter's original ``encode_spans`` back. Idempotent; leaves alone a
    replacement installed by someone else since."""
    global _original
    module = _exporter_module()
    with _install_lock:
        if module is not None and _original is not None and module.encode_spans is encode_spans:
            module.encode_spans = _original
        _original = None
        for encoder in _end_encoders:  # the exporter's encoder cannot take encodings
            encoder.enabled = False
        _end_encoders.clear()


def scrubs(exporter: object) -> bool:
    """Whether ``exporter`` is the OTLP/HTTP span exporter and encodes with
    :func:`encode_spans` (so it needs no scrubbed copies of the spans)."""
    module = sys.modules.get(HTTP_TRACE_EXPORTER)
    return (
        module is not None
        and type(exporter) is getattr(module, "OTLPSpanExporter", None)
        and getattr(module, "encode_spans", None) is encode_spans
    )


def installed() -> bool:
    """Whether the OTLP/HTTP span exporter currently uses :func:`encode_spans`."""
    module = _exporter_module()
    return module is not None and getattr(module, "encode_spans", None) is encode_spans


def clear_caches() -> None:
    """Forget every cached encoding (tests; never needed for correctness)."""
    for cache in (_key_values, _names, _trace_states, _resources, _scopes, DIRECT_TYPES):
        cache.clear()
