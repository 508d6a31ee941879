"""Gateway dispatch: event counting, ``gateway {EVENT}`` spans, connects and reconnects.

discord.py resolves a dispatch as ``ws._discord_parsers[event](data)``, where
``_discord_parsers`` is the very ``state.parsers`` dict built in
``ConnectionState.__init__``. We leave that dict alone and give each websocket
its own dict of wrapped parsers, installed by a hook on
``ConnectionState._update_references(ws)`` -- which ``DiscordWebSocket.from_client``
calls for every new connection before the first event -- so clients built
before ``instrument()`` are handled on their next connection and every wrapper
knows its shard id without looking it up.

Per event the wrapper costs one integer increment (all events), plus for traced
events a :class:`GatewaySpan` (a start timestamp, nothing exported unless
something needs it) held in ``spans.CURRENT`` while the parser runs, so the
listener, command and component tasks discord.py creates find it. Under a ratio
sampler the event's trace is decided as it arrives (``recording.root_sampler``):
a dropped event holds a :class:`SampledOutGatewaySpan` in ``spans.CURRENT``
instead, and nothing below it is traced. Where the install compiled it, the
wrapper is ``_gateway_speedups.GatewayParser``, which does the count, the
decision and either span in C (tests hold it to the Python one, event by event);
an untraced event's is ``_gateway_speedups.CountingParser``.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar, copy_context
from typing import Any, TypeVar

import discord
from discord.gateway import DiscordWebSocket
from discord.state import ConnectionState
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.util import types

from discord_otel import semconv
from discord_otel.instrumentation import clients, recording, runtime, startup
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import (
    CURRENT,
    PROXY,
    PROXY_CONTEXT,
    ROLE_GATEWAY,
    DiscordSpan,
)

Parser = Callable[[Any], None]

_UNSET = object()  # never anyone's span processors


def _load_speedups() -> Any:
    """The compiled half (``discord_otel._gateway_speedups``, built when the package
    is installed where a C compiler is found), or None."""
    try:
        from discord_otel import _gateway_speedups
    except ImportError:
        return None
    return _gateway_speedups


speedups: Any = _load_speedups()
"""The compiled half, used unless the ``OTEL_PYTHON_DISCORD_COMPILED`` setting is
false (tests set this to None for the Python one)."""

_Built = TypeVar("_Built")


def compiled(
    rt: runtime.Runtime | None, site: str, build: Callable[[Any], _Built]
) -> _Built | None:
    """``build(speedups)`` where the compiled half is built and wanted, else None --
    also when building failed (reported as ``site``): the caller's Python code
    then does the same."""
    if speedups is None or rt is None or not rt.settings.compiled:
        return None
    try:
        return build(speedups)
    except Exception:
        report(site)
        return None


_INTERACTION_TYPES = {t.value: t.name for t in discord.InteractionType}

# websockets whose parsers we replaced, to put discord.py's dict back
_instrumented_ws: weakref.WeakSet[DiscordWebSocket] = weakref.WeakSet()


class GatewaySpan(DiscordSpan):
    __slots__ = ("channel_id", "data", "guild_id", "trace_id")
    role = ROLE_GATEWAY
    kind = SpanKind.CONSUMER

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        attributes: dict[str, types.AttributeValue],
        start_ns: int,
        data: Any,
        keep_data: bool,
        trace_id: int | None,
    ) -> None:
        # DiscordSpan.__init__ inlined (one frame less per event)
        self.tracer = tracer
        self.name = name
        self.attributes = attributes  # shared per (event, shard): copied before any write
        self.start_ns = start_ns
        self.real = self.end_ns = self.parent = self.error = None
        self.trace_id = trace_id
        # Only the two ids (strings) are kept, not the payload: a payload kept
        # alive by the listener tasks' contexts survives young collections and
        # makes the cyclic GC's full collections more frequent.
        self.guild_id: Any = None
        self.channel_id: Any = None
        self.data: Any = None
        if type(data) is dict:
            self.guild_id = data.get("guild_id")
            self.channel_id = data.get("channel_id") or _channel_id(data)
            if keep_data:  # content / user id opted in
                self.data = data

    def discord_attributes(self) -> dict[str, types.AttributeValue]:
        # An override, not a bound method stored on the instance: that would be a
        # reference cycle, leaving every event's span to the cyclic GC.
        if self.guild_id is not None or self.channel_id is not None or self.data is not None:
            extra = self._payload_attributes()
            self.guild_id = self.channel_id = self.data = None
            self.attributes = {**self.attributes, **extra}
        return self.attributes

    def _payload_attributes(self) -> Mapping[str, types.AttributeValue]:
        extra: dict[str, types.AttributeValue] = {}
        if self.guild_id is not None:
            extra[semconv.GUILD_ID] = str(self.guild_id)
        if self.channel_id is not None:
            extra[semconv.CHANNEL_ID] = str(self.channel_id)
        data = self.data
        rt = runtime.active
        if isinstance(data, dict) and rt is not None:
            settings = rt.settings
            if settings.capture_message_content and isinstance(data.get("content"), str):
                extra[semconv.MESSAGE_CONTENT] = data["content"]
            if settings.capture_user_id:
                author = data.get("author") or data.get("user") or {}
                member = data.get("member") or {}
                user = author or member.get("user") or {}
                if isinstance(user, dict) and user.get("id") is not None:
                    extra[semconv.USER_ID] = str(user["id"])
        return extra


def _channel_id(data: dict[str, Any]) -> Any:
    """The channel id of a payload without a top-level ``channel_id``
    (interactions carry the channel object)."""
    channel = data.get("channel")
    return channel.get("id") if type(channel) is dict else None


class SampledOutGatewaySpan(GatewaySpan):
    """A gateway event whose trace the sampler dropped on arrival.

    Nothing below it is traced: listener runs and handlers see
    ``sampled_out`` and do their metrics work only. It still answers for the
    event (guild and channel for ``set_discord_context``), and on first real
    use -- a log record, a user's span -- it is the dropped root span with the
    trace id the decision was made on.
    """

    __slots__ = ()
    sampled_out = True
    # Created per dropped event (the most frequent case at low sampling rates) with
    # only what it can be asked for set: the fields below stay these class-level
    # defaults unless written, which goes to the instance's __dict__ (a rare write
    # shadowing the slot: a class attribute is no descriptor, the instance wins).
    start_ns: int = 0
    real: Span | None = None
    end_ns: int | None = None
    parent: DiscordSpan | None = None
    error: BaseException | None = None
    data: Any = None

    def materialise(self) -> Span:
        real = self.real
        if real is None:
            real = self.real = recording.dropped_root(self.tracer, self.trace_id or 0)
        return real


def build_parsers(
    rt: runtime.Runtime, client: Any, parsers: dict[str, Parser], shard: int
) -> dict[str, Parser]:
    tracing = rt.refresh_tracing()
    wrapped: dict[str, Parser] = {}
    for event, func in parsers.items():
        cell = rt.instruments.event_cell(event, shard)
        if event == "INTERACTION_CREATE":
            wrapped[event] = _interaction_parser(rt, event, shard, func, cell, tracing)
        elif event == "READY":
            wrapped[event] = _ready_parser(rt, client, shard, func, cell, tracing)
        elif not tracing or event in rt.untraced:
            wrapped[event] = _counting_parser(rt, func, cell)
        else:
            wrapped[event] = _traced_parser(rt, event, shard, func, cell)
    return wrapped


def _counting_parser(rt: runtime.Runtime, func: Parser, cell: list[int]) -> Parser:
    """A parser counting the event in ``cell[0]`` (the compiled one where built)."""
    fast: Parser | None = compiled(
        rt, "compiled counting parser", lambda built: built.CountingParser(func, cell)
    )
    if fast is not None:
        return fast

    def parse(data: Any) -> None:
        cell[0] += 1
        return func(data)

    return parse


def _parse_under(current: ContextVar[Any], span: DiscordSpan, func: Parser, data: Any) -> None:
    """``func(data)`` with ``span`` current, run in a copy of the connection task's
    context: the tasks discord.py starts during the parse copy it, and the
    connection task's own context is left as it was (a set and a reset of the
    variable in it would each build a new mapping)."""
    current.set(span)
    return func(data)


def _traced_parser(
    rt: runtime.Runtime,
    event: str,
    shard: int,
    func: Parser,
    cell: list[int],
) -> Parser:
    """A parser holding the event's span in ``spans.CURRENT`` while it runs: the
    listener, command, view and modal tasks discord.py starts during the parse
    take it with their context."""
    tracer = rt.tracer
    name = semconv.SPAN_GATEWAY.format(event=event)
    attributes: dict[str, types.AttributeValue] = {
        semconv.GATEWAY_EVENT: event,
        semconv.SHARD_ID: shard,
    }
    time_ns = time.time_ns
    current = CURRENT
    keep_data = rt.settings.capture_message_content or rt.settings.capture_user_id

    # The rule holds while the tracer's span processors do (root_sampler's own
    # cache key, kept here: asked per event, answered without a frame).
    span_processor = getattr(tracer, "span_processor", None)
    fast = compiled(
        rt,
        "compiled gateway parser",
        lambda built: built.GatewayParser(
            func,
            cell,
            functools.partial(recording.root_sampler, tracer),
            span_processor,
            current,
            GatewaySpan,
            SampledOutGatewaySpan,
            time_ns,
            tracer,
            name,
            attributes,
            keep_data,
        ),
    )
    if fast is not None:
        return fast  # type: ignore[no-any-return]

    root_sampler = recording.root_sampler
    root_bound_bits = recording.ROOT_BOUND_BITS
    new_span = object.__new__
    rule_for: list[Any] = [_UNSET, None]  # the span processors it was read for, the rule

    def parse(data: Any) -> None:
        """What the compiled parser does, where it is not built or not wanted."""
        cell[0] += 1
        # The root's sampling is decided now: at low rates most events are
        # dropped, and a dropped one skips every span below it.
        trace_id = None
        if span_processor is not None and span_processor._span_processors is rule_for[0]:
            rule = rule_for[1]
        else:
            rule = rule_for[1] = root_sampler(tracer)
            rule_for[0] = getattr(span_processor, "_span_processors", _UNSET)
        if rule is not None:
            trace_id = rule[0]()
            if trace_id & root_bound_bits >= rule[1]:
                # Every task started under its stand-in knows at once that
                # nothing is traced. Built without an __init__ frame: the fields
                # GatewaySpan.__init__ sets that a stand-in is never asked for
                # are its class-level defaults.
                dropped = new_span(SampledOutGatewaySpan)
                dropped.tracer = tracer
                dropped.name = name
                dropped.attributes = attributes
                dropped.trace_id = trace_id
                if type(data) is dict:
                    dropped.guild_id = data.get("guild_id")
                    dropped.channel_id = data.get("channel_id") or _channel_id(data)
                    if keep_data:
                        dropped.data = data
                else:
                    dropped.guild_id = dropped.channel_id = None
                return copy_context().run(_parse_under, current, dropped, func, data)
        # sampled, or no rule to decide it here: the event under its own span
        span = GatewaySpan(tracer, name, attributes, time_ns(), data, keep_data, trace_id)
        try:
            return copy_context().run(_parse_under, current, span, func, data)
        finally:
            if span.real is None:
                span.end_ns = time_ns()
            else:
                span.finish()

    return parse


def _interaction_parser(
    rt: runtime.Runtime,
    event: str,
    shard: int,
    func: Parser,
    cell: list[int],
    tracing: bool,
) -> Parser:
    inner = (
        _traced_parser(rt, event, shard, func, cell)
        if tracing and event not in rt.untraced
        else _counting_parser(rt, func, cell)
    )

    def parse(data: Any) -> None:
        try:
            rt.interactions.put(
                int(data["id"]),
                (time.time_ns(), _INTERACTION_TYPES.get(data.get("type"), "unknown")),
            )
        except Exception:
            report("interaction receipt")
        return inner(data)

    return parse


def _ready_parser(
    rt: runtime.Runtime, client: Any, shard: int, func: Parser, cell: list[int], tracing: bool
) -> Parser:
    inner = (
        _traced_parser(rt, "READY", shard, func, cell)
        if tracing and "READY" not in rt.untraced
        else _counting_parser(rt, func, cell)
    )

    def parse(data: Any) -> None:
        try:
            return inner(data)
        finally:
            try:
                startup.gateway_ready(client, shard)
            except Exception:
                report("ready")

    return parse


# --- hooks ---------------------------------------------------------------------


def _update_references(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    result = wrapped(*args, **kwargs)
    rt = runtime.active
    if rt is None:
        return result
    try:
        ws = args[0] if args else kwargs["ws"]
        parsers: dict[str, Parser] = instance.parsers
        if getattr(ws, "_discord_parsers", None) is parsers:
            client = instance._get_client()
            shard = getattr(ws, "shard_id", None) or 0
            ws._discord_parsers = build_parsers(rt, client, parsers, shard)
            _instrumented_ws.add(ws)
            clients.track(client)
            if rt.tracing and trace.get_current_span() is not PROXY:
                # Connecting outside our Client.connect hook (instrumented late, or
                # a hand-made websocket): hold the proxy in this task's context for
                # good, as the hook would; without a Discord span it is no span.
                otel_context.attach(PROXY_CONTEXT)
    except Exception:
        report("gateway parsers")
    return result


async def _from_client(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    rt = runtime.active
    if rt is None:
        return await wrapped(*args, **kwargs)
    client = args[0] if args else kwargs.get("client")
    shard = kwargs.get("shard_id") or 0
    initial = bool(kwargs.get("initial"))
    token = None
    try:
        if initial:
            # The websocket handshake (an aiohttp-client span) nests under the
            # shard's `gateway connect` span of the startup trace.
            connect_span = startup.gateway_connecting(rt, client, shard)
            if connect_span is not None:
                token = otel_context.attach(trace.set_span_in_context(connect_span))
        else:
            kind = semconv.RECONNECT_RESUME if kwargs.get("resume") else semconv.RECONNECT_IDENTIFY
            rt.instruments.reconnects.add(
                1, {semconv.SHARD_ID: shard, semconv.RECONNECT_KIND: kind}
            )
            # A reconnect's handshake would be a lone root span: counted above instead.
            token = otel_context.attach(
                otel_context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True)
            )
    except Exception:
        report("gateway connect")
    try:
        return await wrapped(*args, **kwargs)
    except BaseException as exc:
        if initial:
            try:
                startup.gateway_failed(client, shard, exc)
            except Exception:
                report("gateway connect")
        raise
    finally:
        if token is not None:
            otel_context.detach(token)


async def _connect(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Hold the proxy span in the connection task's context (see spans.py)."""
    rt = runtime.active
    token = None
    if rt is not None:
        try:
            clients.track(instance)
            rt.instruments.start_lag_probe(instance)
            if rt.refresh_tracing() and trace.get_current_span() is not PROXY:
                token = otel_context.attach(PROXY_CONTEXT)
        except Exception:
            report("connect")
    try:
        return await wrapped(*args, **kwargs)
    finally:
        if token is not None:
            otel_context.detach(token)
        try:
            startup.client_closed(instance)
        except Exception:
            report("connect")


def instrument(patcher: Patcher) -> None:
    patcher.wrap(ConnectionState, "_update_references", _update_references)
    patcher.wrap(DiscordWebSocket, "from_client", _from_client)
    patcher.wrap(discord.Client, "connect", _connect)
    patcher.wrap(discord.AutoShardedClient, "connect", _connect)


def uninstrument() -> None:
    for ws in list(_instrumented_ws):
        try:
            ws._discord_parsers = ws._connection.parsers
        except Exception:
            report("gateway restore")
    _instrumented_ws.clear()
