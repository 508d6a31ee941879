"""Deferred ("lazy") spans: the design that keeps the gateway hot path cheap.

A sampled SDK span costs about as much as discord.py's own parse and dispatch
of a ``MESSAGE_CREATE``. So at gateway dispatch and for each listener run we
store only a start timestamp in a small :class:`DiscordSpan`, and the real SDK
span (with its original start time) is created -- *materialised* -- only when
something needs it:

- a command, component, modal, autocomplete or task starts under it (those are
  always exported and materialise their parents);
- a REST call, a database query or a user span starts under it: the SDK tracer
  asks the parent for its ``SpanContext``;
- a log record asks for the current span, or an error is recorded.

A message that triggers nothing produces no span at all.

How other code finds the current Discord span without an OpenTelemetry
``context.attach`` per event: the innermost Discord span is kept in the
:data:`CURRENT` context variable, and the OpenTelemetry context holds one shared
:data:`PROXY` span that forwards to ``CURRENT.get()``. The proxy is attached
once for the whole gateway connection (``Client.connect``); tasks that
discord.py creates while dispatching copy both variables, so a listener run only
sets ``CURRENT``. Where the proxy is not in the context (e.g. a task started in
``setup_hook``), :func:`enter` attaches it.

While a gateway event is parsed, its span is held in ``CURRENT``: every task
discord.py starts during the parse (listener runs, interactions' command, view
and modal tasks) copies it with its context, so a listener run reads its parent
when it starts, and nothing of ours runs when discord.py schedules it
(listeners.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN,
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
)
from opentelemetry.util import types

from discord_otel import semconv
from discord_otel.instrumentation import recording
from discord_otel.instrumentation.recording import (
    EMPTY_CONTEXT,
    NON_RECORDING_TYPES,
    RecordingSpan,
)
from discord_otel.instrumentation.safety import report

ROLE_GATEWAY = 0
ROLE_LISTENER = 1
ROLE_HANDLER = 2  # command, component, modal, autocomplete: always exported
ROLE_TASK = 3


class DiscordSpan:
    """A span that becomes a real span only on first real use.

    Not itself an ``opentelemetry.trace.Span`` (only :data:`PROXY` is ever in
    the OpenTelemetry context), so it can be slotted: the fields every gateway
    event and listener run sets are slots; the rarely set ones are class-level
    defaults, and an instance ``__dict__`` exists only once one of them is set.
    Hot paths create it with ``object.__new__`` and set the slots inline.
    """

    __slots__ = (
        "__dict__",
        "attributes",
        "end_ns",
        "error",
        "name",
        "parent",
        "real",
        "start_ns",
        "tracer",
    )

    role: int = ROLE_LISTENER
    kind: SpanKind = SpanKind.INTERNAL
    parent_context: Context | None = None
    lazy_attributes: Callable[[], Mapping[str, types.AttributeValue]] | None = None
    links: list[Link] | None = None
    # called once just before materialising, to settle the final name/attributes
    resolve: Callable[[DiscordSpan], None] | None = None
    # a root's trace id when its sampling was decided before it started
    trace_id: int | None = None
    # True when the sampler dropped this span's trace as it began: nothing below
    # it is traced (listener runs and handlers under it do metrics work only)
    sampled_out: bool = False

    def __init__(
        self,
        tracer: Tracer,
        name: str,
        attributes: dict[str, types.AttributeValue],
        start_ns: int,
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.attributes = attributes
        self.start_ns = start_ns
        self.real: Span | None = None
        self.end_ns: int | None = None
        self.parent: DiscordSpan | None = None
        self.error: BaseException | None = None

    # --- materialisation ---------------------------------------------------
    def materialise(self) -> Span:
        real = self.real
        if real is not None:
            return real
        try:
            parent = self.parent
            parent_context = None
            if parent is not None:
                parent_span = parent.materialise()
                # sampled out: skip naming it and preparing attributes never read
                # (our own recording spans are sampled: nothing to look up)
                if type(parent_span) is not RecordingSpan:
                    dropped = recording.dropped_child(self.tracer, parent_span)
                    if dropped is not None:
                        self.real = dropped
                        return dropped
            else:
                parent_context = self.parent_context
                parent_span = (
                    INVALID_SPAN
                    if parent_context is None
                    else trace.get_current_span(parent_context)
                )
            resolve = self.resolve
            if resolve is not None:
                self.resolve = None
                resolve(self)
            real = recording.start_span(
                self.tracer,
                self.name,
                parent_span,
                self.kind,
                {**self.discord_attributes()},  # a copy: the dict may be shared
                self.links,
                self.start_ns,
                parent_context,
                self.trace_id,
            )
        except Exception:
            report("materialise")
            real = INVALID_SPAN
        self.real = real
        if self.end_ns is not None and type(real) not in NON_RECORDING_TYPES:
            real.end(end_time=self.end_ns)
        return real

    @property
    def materialised(self) -> bool:
        return self.real is not None

    def set_internal(self, key: str, value: types.AttributeValue) -> None:
        """Set an attribute without forcing the span to exist."""
        real = self.real
        if real is not None:
            recording.set_internal(real, key, value)
        else:  # copy on write: the initial dict may be shared by many spans
            self.attributes = {**self.attributes, key: value}

    def rename(self, name: str) -> None:
        self.name = name
        real = self.real
        if real is not None:
            real.update_name(name)

    def record_error(self, exc: BaseException) -> None:
        """Remember the failure; the span is exported with an error status."""
        self.error = exc

    def finish(self, force: bool = False) -> None:
        """End the scope: exported if forced, failed, or already materialised."""
        end_ns = time.time_ns()
        error = self.error
        if error is not None or force:
            real = self.materialise()
            if error is not None:
                mark_error(real, error)
        elif self.real is None:
            self.end_ns = end_ns
            return
        else:
            real = self.real
        if type(real) not in NON_RECORDING_TYPES:  # a sampled-out span's end does nothing
            real.end(end_time=end_ns)

    def discord_attributes(self) -> dict[str, types.AttributeValue]:
        """This span's attributes (lazy ones included), without materialising it."""
        lazy = self.lazy_attributes
        if lazy is not None:
            self.lazy_attributes = None
            self.attributes = {**self.attributes, **lazy()}
        return self.attributes

    def handler(self) -> DiscordSpan | None:
        """The nearest command/component/modal/autocomplete span, self included."""
        span: DiscordSpan | None = self
        while span is not None:
            if span.role == ROLE_HANDLER:
                return span
            span = span.parent
        return None

    def ancestors(self) -> Iterator[DiscordSpan]:
        span: DiscordSpan | None = self
        while span is not None:
            yield span
            span = span.parent

    def get_span_context(self) -> SpanContext:
        return self.materialise().get_span_context()

    def __repr__(self) -> str:
        return f"DiscordSpan({self.name!r}, materialised={self.real is not None})"


class _CurrentDiscordSpan(Span):
    """The one span object in the OpenTelemetry context: the ``Span`` API forwarded
    to the real span of :func:`current`."""

    def _target(self) -> Span:
        span = current()
        if span is None:
            return INVALID_SPAN
        return span.materialise()

    def get_span_context(self) -> SpanContext:
        span = current()
        if span is None:
            return INVALID_SPAN_CONTEXT
        return span.get_span_context()

    def is_recording(self) -> bool:
        return self._target().is_recording()

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        self._target().set_attributes(attributes)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        self._target().set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        self._target().add_event(name, attributes, timestamp)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        self._target().add_link(context, attributes)

    def update_name(self, name: str) -> None:
        self._target().update_name(name)

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        self._target().set_status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        self._target().record_exception(exception, attributes, timestamp, escaped)

    def end(self, end_time: int | None = None) -> None:
        return None  # the instrumentation ends its spans itself

    def __repr__(self) -> str:
        return f"CurrentDiscordSpan({current()!r})"


def _current_context_reader() -> Callable[[], Context]:
    """The OpenTelemetry context getter: its ContextVar's own ``get`` when the
    runtime context is the default contextvars one (two Python frames less)."""
    try:
        from opentelemetry.context import _RUNTIME_CONTEXT
        from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

        if type(_RUNTIME_CONTEXT) is ContextVarsRuntimeContext:
            return _RUNTIME_CONTEXT._current_context.get
    except Exception:
        pass
    return otel_context.get_current


otel_current = _current_context_reader()
"""The current OpenTelemetry context (``opentelemetry.context.get_current``)."""

CURRENT: ContextVar[DiscordSpan | None] = ContextVar("discord_otel_current_span", default=None)

current: Callable[[], DiscordSpan | None] = CURRENT.get
"""The innermost Discord span of this task (the event being parsed, while a parse
runs: also when the task parsing it has a span of its own, as a bot or a test
feeding gateway payloads from a listener does). ``CURRENT.get`` itself: no frame."""


PROXY = _CurrentDiscordSpan()
PROXY_CONTEXT = trace.set_span_in_context(PROXY, EMPTY_CONTEXT)


def in_dropped_event() -> bool:
    """Whether this task runs under a gateway event whose trace the sampler dropped
    on arrival, with no span of the bot's own current: nothing started now can be
    recorded, so whoever would start a span or look for a sampled one can skip it."""
    span = CURRENT.get()
    return span is not None and span.sampled_out and otel_current() is PROXY_CONTEXT


_new_span = object.__new__

EnterTokens = tuple[Token[DiscordSpan | None], object | None]


def enter(span: DiscordSpan) -> EnterTokens:
    """Make ``span`` the current span for this task (see the module docstring)."""
    token = CURRENT.set(span)
    if otel_current() is PROXY_CONTEXT or trace.get_current_span() is PROXY:
        return token, None
    return token, otel_context.attach(trace.set_span_in_context(PROXY))


def start_child(span: DiscordSpan, parent: DiscordSpan | None = None) -> EnterTokens:
    """Parent ``span`` under the current span (the Discord span, or the user's own
    span when one is current) and make it current, as :func:`enter` does
    (``parent``, when given, is the current Discord span as its caller found it)."""
    if parent is None:
        parent = current()
    if otel_current() is PROXY_CONTEXT:  # the usual case, and the cheapest test
        span.parent = parent
        return CURRENT.set(span), None
    otel_span = trace.get_current_span()
    if otel_span is PROXY:
        span.parent = parent
        return CURRENT.set(span), None
    if otel_span is INVALID_SPAN:
        span.parent = parent
    elif otel_span.get_span_context().is_valid:  # the bot's own span: the parent
        span.parent = None
        span.parent_context = otel_context.get_current()
    else:
        span.parent = parent
    token = CURRENT.set(span)
    return token, otel_context.attach(trace.set_span_in_context(PROXY))


class StandingSpan(DiscordSpan):
    """A Discord span standing for a span already started (:func:`standing_for`)."""

    __slots__ = ()

    def let_go(self) -> None:
        """The span it stands for has ended: keep only that span's context.

        Contexts copied while it was current outlive the call: aiohttp and
        asyncio schedule timers with the context current when they start them,
        and a cancelled timer stays in the loop's heap, its context with it,
        until its time comes. Holding only the ended span's context, those no
        longer keep the command's whole chain of spans (and their SDK spans)
        alive: that chain is freed as the command ends instead of passing
        through the collector's older generations. Code that still runs in such
        a context sees the same span context as before."""
        real = self.real
        if real is not None and type(real) not in NON_RECORDING_TYPES:
            context = real.get_span_context()
            real = self.real = _new_span(NonRecordingSpan)
            real._context = context  # NonRecordingSpan.__init__, inlined
        self.parent = None


def standing_for(real: Span, tracer: Tracer, parent: DiscordSpan | None) -> StandingSpan:
    """A Discord span for ``real``, a span already started (a REST call's), under
    ``parent``: set in ``CURRENT`` it is what the proxy forwards to, which makes
    ``real`` current without attaching a new OpenTelemetry context."""
    span = _new_span(StandingSpan)
    span.tracer = tracer
    span.name = ""
    span.attributes = {}
    span.start_ns = 0
    span.end_ns = span.error = None
    span.real = real
    span.parent = parent
    return span


def current_parent() -> tuple[Span | None, DiscordSpan | None, bool]:
    """What a span started now (a REST call's, a query's) goes under: its parent
    (None under an event the sampler dropped as it arrived: nothing started now
    can record), the current Discord span and whether the proxy is the current
    context (those two for :func:`make_current`)."""
    if otel_current() is not PROXY_CONTEXT:
        return trace.get_current_span(), None, False
    discord_span = current()  # the usual case: the proxy forwards to it
    if discord_span is None:
        return INVALID_SPAN, None, True
    if discord_span.sampled_out:  # known dropped: nothing to look up
        return None, discord_span, True
    return discord_span.materialise(), discord_span, True


def make_current(
    real: Span, tracer: Tracer, parent: DiscordSpan | None, proxied: bool
) -> Token[Any]:
    """Make ``real``, a span just started under ``parent`` (the current Discord
    span), the current span: through ``CURRENT`` where the proxy is the current
    context (``proxied``), else by attaching a context. Undone by
    :func:`reset_current`."""
    if proxied:
        return CURRENT.set(standing_for(real, tracer, parent))
    return otel_context.attach(trace.set_span_in_context(real))


def reset_current(token: Token[Any]) -> None:
    """Undo :func:`make_current`, the span made current having ended."""
    if token.var is CURRENT:
        standing = CURRENT.get()
        CURRENT.reset(token)
        if type(standing) is StandingSpan:
            standing.let_go()
    else:
        otel_context.detach(token)


def leave(tokens: EnterTokens) -> None:
    token, otel_token = tokens
    if otel_token is not None:
        otel_context.detach(otel_token)  # type: ignore[arg-type]
    CURRENT.reset(token)


def error_type(exc: BaseException) -> str:
    """``error.type`` of an exception: its class name, unwrapping invoke wrappers."""
    original = getattr(exc, "original", None)
    if isinstance(original, BaseException) and type(exc).__name__ in _WRAPPERS:
        exc = original
    return type(exc).__name__


_WRAPPERS = frozenset({"CommandInvokeError", "HybridCommandError"})


def mark_error(span: Span, exc: BaseException) -> None:
    """Error status, ``error.type`` and an exception event (type only: messages may hold data)."""
    kind = error_type(exc)
    recording.set_internal(span, semconv.ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, kind))
    recording.add_internal_event(
        span, semconv.EVENT_EXCEPTION, {semconv.EXCEPTION_TYPE: recording.exception_type(exc)}
    )


def link_to(span_context: SpanContext | None) -> Sequence[Link]:
    if span_context is None or not span_context.is_valid:
        return ()
    return (Link(span_context),)
