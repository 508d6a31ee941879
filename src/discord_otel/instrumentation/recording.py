"""Sampled spans of our own, handed straight to the SDK's span processors.

Creating a span through the SDK's ``Tracer.start_span`` costs ~20-40 us on this
kind of machine (sampler, ``SpanContext``, a ``BoundedAttributes`` with its lock
and per-value cleaning, an ``RLock``, bounded event/link lists, ``on_start``,
then a frozen ``ReadableSpan`` copy at the end). A command makes three or four
of our spans, which alone would exceed the benchmark budget (issue 6).

:func:`start_span` does the same job for the spans the instrumentation makes
itself, at a fraction of the cost, when the tracer's pipeline is the plain one
the distro configures (an SDK ``Tracer`` whose processors are the SDK's batch or
simple processors, whose ``on_start`` does nothing, and the SDK's own tracer
metrics switched off): the ids come from the tracer's id generator, the decision
from its sampler (without a call for the usual ``ParentBased`` child of a local
parent), and a :class:`RecordingSpan` -- which is also the ``ReadableSpan`` the
processors receive -- keeps our already-clean attributes in a plain dict.
Anything else (another provider, custom processors, an attribute length limit,
a sampler answering ``RECORD_ONLY``) goes through ``tracer.start_span``
unchanged, so behaviour never depends on the fast path.

Attributes set by other code through the Span API (``set_attribute`` on the
current span, span processors) get the SDK's ``BoundedAttributes`` semantics:
the dict is converted on the first such call.
"""

from __future__ import annotations

import functools
import logging
import random
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, Tracer
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor as _MultiProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    INVALID_SPAN,
    INVALID_SPAN_CONTEXT,
    Link,
    NonRecordingSpan,
    ProxyTracer,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util import types

logger = logging.getLogger(__name__)

EMPTY_CONTEXT = Context()
_UNSET = Status(StatusCode.UNSET)
_EMPTY_TRACE_STATE = TraceState()
# TraceFlags by value: sampled bit 0x01, random-trace-id bit 0x02
_FLAGS = tuple(TraceFlags(value) for value in range(4))
_SAMPLED = TraceFlags.SAMPLED
_RANDOM_TRACE_ID = TraceFlags.RANDOM_TRACE_ID
_KNOWN_PROCESSORS = (BatchSpanProcessor, SimpleSpanProcessor)


RootRule = tuple[Callable[[], int], int]
"""A root sampler's rule: a trace id from this function (0 is not a valid one:
draw again), sampled when its low 64 bits are below this bound."""


class _Pipeline:
    """What a fast start needs from one SDK tracer (read once per tracer)."""

    __slots__ = (
        "end_calls",
        "id_generator",
        "limits",
        "max_attributes",
        "new_span_id",
        "new_trace_id",
        "random_ids",
        "resource",
        "root_bound",
        "root_rule",
        "sampler",
        "scope",
        "standard_ids",
        "usual_parent_based",
    )

    def __init__(self, tracer: Tracer) -> None:
        self.sampler = tracer.sampler
        self.id_generator = tracer.id_generator
        self.resource: Resource = tracer.resource
        self.scope: InstrumentationScope = tracer._instrumentation_scope
        self.limits: SpanLimits = tracer._span_limits
        max_attributes = self.limits.max_span_attributes
        self.max_attributes = sys.maxsize if max_attributes is None else max_attributes
        self.random_ids = bool(self.id_generator.is_trace_id_random())
        self.end_calls = tuple(_end_call(p) for p in tracer.span_processor._span_processors)
        sampler = self.sampler
        # ParentBased with the default local-parent rules: a child of a local
        # parent is sampled exactly when its parent is, with no sampler call.
        self.usual_parent_based = (
            isinstance(sampler, ParentBased)
            and getattr(sampler, "_local_parent_sampled", None) is ALWAYS_ON
            and getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
        )
        # ... and over one of the SDK's own root samplers: a root is sampled
        # exactly when the low 64 bits of its trace id are below this bound.
        self.root_bound = _root_bound(sampler) if self.usual_parent_based else None
        # The SDK's RandomIdGenerator: its draws, without its frames (a draw of 0,
        # the invalid id, is for the caller to repeat).
        self.standard_ids = type(self.id_generator) is RandomIdGenerator
        self.new_span_id: Callable[[], int] = (
            functools.partial(random.getrandbits, 64)
            if self.standard_ids
            else self.id_generator.generate_span_id
        )
        self.new_trace_id: Callable[[], int] = (
            functools.partial(random.getrandbits, 128)
            if self.standard_ids
            else self.id_generator.generate_trace_id
        )
        # What root_sampler answers: the root rule, when some roots come out dropped.
        bound = self.root_bound
        self.root_rule: RootRule | None = None
        if bound is not None and bound <= _TRACE_ID_LOW_BITS:
            generate: Callable[[], int] = self.id_generator.generate_trace_id
            if self.standard_ids:
                generate = functools.partial(random.getrandbits, 128)
            self.root_rule = (generate, bound)


def _end_call(processor: Any) -> Callable[[Any], None]:
    """What ending one of our spans calls for ``processor``: what its on_end would
    do, minus the dispatch. Our spans are always sampled, so a batch processor's
    on_end is just its queue's emit -- or, where its exporter encodes with
    discord-otel's OTLP encoder, the span encoded as it ends and the encoding
    queued (``SafeSpanExporter.end_call``)."""
    if type(processor) is not BatchSpanProcessor:
        return processor.on_end  # type: ignore[no-any-return]
    from discord_otel.pipeline import SafeSpanExporter, queue_emitter

    batch = processor._batch_processor
    exporter = batch._exporter
    emit = queue_emitter(batch)
    encoder = exporter.end_call(emit) if type(exporter) is SafeSpanExporter else None
    return emit if encoder is None else encoder


_TRACE_ID_LOW_BITS = TraceIdRatioBased.TRACE_ID_LIMIT
_new_tuple = tuple.__new__


def _root_bound(sampler: Sampler) -> int | None:
    root = getattr(sampler, "_root", None)
    if type(root) is TraceIdRatioBased:
        return root.bound
    if root is ALWAYS_ON:
        return _TRACE_ID_LOW_BITS + 1
    if root is ALWAYS_OFF:
        return 0
    return None


def _pipeline_for(tracer: object) -> _Pipeline | None:
    """The fast path's view of ``tracer``, or None when it must not be used.

    Cached per tracer, and looked at again whenever the provider's processors
    change (``add_span_processor`` replaces their tuple)."""
    global _last_pipeline
    if type(tracer) is ProxyTracer:
        tracer = tracer._tracer
    try:
        processors = tracer.span_processor._span_processors  # type: ignore[attr-defined]
    except AttributeError:  # not the SDK's tracer
        processors = None
    last = _last_pipeline
    if last[0] is tracer and last[1] is processors:  # the usual case: one tracer
        return last[2]
    cached = _pipelines.get(id(tracer))
    if cached is not None and cached[0] is tracer and cached[1] is processors:
        _last_pipeline = cached
        return cached[2]
    pipeline: _Pipeline | None = None
    try:
        if _eligible(tracer):
            assert isinstance(tracer, Tracer)
            pipeline = _Pipeline(tracer)
    except Exception:
        logger.debug("fast span path unavailable for %r", tracer, exc_info=True)
        pipeline = None
    if type(tracer) is not ProxyTracer:  # a proxy may get its real tracer later
        if len(_pipelines) >= 64:
            _pipelines.clear()
        _pipelines[id(tracer)] = _last_pipeline = (tracer, processors, pipeline)
    return pipeline


def _eligible(tracer: object) -> bool:
    if type(tracer) is not Tracer or not tracer._is_enabled():
        return False
    if type(tracer._tracer_metrics).__name__ != "NoOpTracerMetrics":
        return False  # the SDK's own span metrics are on: let the SDK count
    limits = tracer._span_limits
    if limits.max_span_attribute_length is not None or limits.max_attribute_length is not None:
        return False  # values would need truncating: the SDK does that
    processor = tracer.span_processor
    if type(processor) is not _MultiProcessor:
        return False
    return all(type(p) in _KNOWN_PROCESSORS for p in processor._span_processors)


# id(tracer) -> (tracer, kept so the id is not reused; its processors when
# looked at; its pipeline or None)
_pipelines: dict[int, tuple[object, object, _Pipeline | None]] = {}
_last_pipeline: tuple[object, object, _Pipeline | None] = (None, None, None)


def root_sampler(tracer: trace.Tracer) -> RootRule | None:
    """How ``tracer``'s sampler decides a root, when it may drop one and the rule
    is known: ``(draw_trace_id, bound)``, a root being sampled exactly when
    ``trace_id & ROOT_BOUND_BITS < bound``; else None.

    Lets a caller decide a root's sampling before starting it, and skip the
    whole trace when it is dropped; a sampled one is then started with that
    trace id (``start_span(trace_id=...)``). The answer holds while the
    tracer's span processors are the same tuple (the gateway parsers keep it
    so, rather than asking per event)."""
    pipeline = _pipeline_for(tracer)
    return pipeline.root_rule if pipeline is not None else None


ROOT_BOUND_BITS = _TRACE_ID_LOW_BITS
"""The bits of a trace id the SDK's ``TraceIdRatioBased`` compares with its bound."""


def dropped_root(tracer: trace.Tracer, trace_id: int) -> Span:
    """The dropped root span a sampler's decision on ``trace_id`` stands for (see
    :func:`root_sampler`): never exported, but with a valid context, so that logs
    made under it still carry its trace id and its children are dropped too."""
    pipeline = _pipeline_for(tracer)
    if pipeline is None:  # the pipeline changed since the decision: still a dropped span
        span_id, random_ids = _FALLBACK_IDS.generate_span_id(), True
    else:
        span_id, random_ids = pipeline.id_generator.generate_span_id(), pipeline.random_ids
    if not trace_id:  # drawn as 0 (the invalid id): any other will do
        trace_id = _FALLBACK_IDS.generate_trace_id()
    context = SpanContext(trace_id, span_id, False, _FLAGS[2 if random_ids else 0])
    return DroppedSpan(context, tracer)


_FALLBACK_IDS = RandomIdGenerator()


def start_span(
    tracer: trace.Tracer,
    name: str,
    parent: Span,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: dict[str, types.AttributeValue] | None = None,
    links: Sequence[Link] | None = None,
    start_time: int | None = None,
    parent_context: Context | None = None,
    trace_id: int | None = None,
) -> Span:
    """Start a span under ``parent`` (``INVALID_SPAN`` for a root), like
    ``tracer.start_span`` would. ``attributes`` must already be valid attribute
    values (the instrumentation's own); the dict is kept, not copied.
    ``parent_context``, when given, is the context ``parent`` came from (passed
    to a sampler that needs one). ``trace_id``, for a root, is the one its
    sampling was decided on (:func:`root_sampler`); the SDK's own path, taken
    when the pipeline changed since, makes its own."""
    # _pipeline_for's usual case inlined: one frame less per span
    tracer_last, processors_last, pipeline = _last_pipeline
    if (
        tracer_last is not tracer
        or pipeline is None
        or processors_last is not tracer.span_processor._span_processors  # type: ignore[attr-defined]
    ):
        pipeline = _pipeline_for(tracer)
    if pipeline is None:
        return _sdk_start(tracer, name, parent, kind, attributes, links, start_time, parent_context)
    parent_span_context: SpanContext | None = (
        parent._context
        if type(parent) is RecordingSpan
        else INVALID_SPAN_CONTEXT
        if parent is INVALID_SPAN  # a root (no call needed)
        else parent.get_span_context()
    )
    assert parent_span_context is not None
    # unpacked at once (see dropped_child) rather than by six property calls
    parent_trace_id, _, parent_remote, parent_flags, parent_state, parent_valid = (
        parent_span_context
    )
    if parent_valid:
        trace_id = parent_trace_id
        random_ids = bool(parent_flags & _RANDOM_TRACE_ID)
    else:
        parent_span_context = None
        if not trace_id:  # none decided on (or drawn as 0, the invalid id: drawn again)
            trace_id = pipeline.new_trace_id() or pipeline.id_generator.generate_trace_id()
        random_ids = pipeline.random_ids
    if parent_span_context is not None and pipeline.usual_parent_based and not parent_remote:
        if not parent_flags & _SAMPLED:
            return _dropped(tracer, parent, parent_span_context)
        sampled = True
        trace_state: TraceState | None = parent_state
    elif parent_span_context is None and parent_context is None and pipeline.root_bound is not None:
        # a root under ParentBased(TraceIdRatioBased / ALWAYS_ON / ALWAYS_OFF): the
        # sampler's own rule, without its calls (one per command at low rates)
        sampled = trace_id & _TRACE_ID_LOW_BITS < pipeline.root_bound
        trace_state = None
    else:
        if parent_context is None:
            parent_context = trace.set_span_in_context(parent, EMPTY_CONTEXT)
        result = pipeline.sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links
        )
        if result.decision is Decision.RECORD_ONLY:  # rare: the SDK's recording-only span
            return _sdk_start(
                tracer, name, parent, kind, attributes, links, start_time, parent_context
            )
        sampled = result.decision is Decision.RECORD_AND_SAMPLE
        trace_state = result.trace_state
        if sampled and result.attributes:
            attributes = dict(result.attributes)
    flags = _FLAGS[(1 if sampled else 0) | (2 if random_ids else 0)]
    if trace_state is None:
        trace_state = _EMPTY_TRACE_STATE
    if pipeline.standard_ids:
        # The SDK's RandomIdGenerator, drawn without its frame (0, the invalid id:
        # drawn again), and a SpanContext built as its __new__ does: the ids are
        # known valid (the trace id from a valid parent, the generator or a root
        # decision that drew it the same way), so is_valid is True.
        span_id = pipeline.new_span_id() or pipeline.id_generator.generate_span_id()
        span_context: SpanContext = _new_tuple(
            SpanContext, (trace_id, span_id, False, flags, trace_state, True)
        )
    else:
        span_context = SpanContext(
            trace_id, pipeline.id_generator.generate_span_id(), False, flags, trace_state
        )
    if not sampled:
        if pipeline.usual_parent_based:
            return DroppedSpan(span_context, tracer)
        return NonRecordingSpan(span_context)
    return RecordingSpan(
        pipeline,
        name,
        span_context,
        parent_span_context,
        kind,
        attributes if attributes is not None else {},
        links,
        start_time if start_time is not None else time_ns(),
    )


def plain_attributes(
    tracer: trace.Tracer, attributes: types.Attributes
) -> dict[str, types.AttributeValue] | None:
    """Another instrumentation's span attributes as :func:`start_span` takes them
    (a new plain dict), where the SDK would keep them unchanged: string keys,
    ``str``/``bool``/``int``/``float`` values, no more than the tracer's limit.
    None where any would need the SDK's cleaning (the caller starts the span
    through the SDK then)."""
    if not attributes:
        return {}
    plain: dict[str, types.AttributeValue] = {}
    for key, value in attributes.items():
        if type(key) is not str or not key or type(value) not in _PLAIN_VALUE_TYPES:
            return None
        plain[key] = value
    pipeline = _pipeline_for(tracer)
    if pipeline is None or len(plain) > pipeline.max_attributes:
        return None
    return plain


_PLAIN_VALUE_TYPES = frozenset((str, bool, int, float))


def _sdk_start(
    tracer: trace.Tracer,
    name: str,
    parent: Span,
    kind: SpanKind,
    attributes: dict[str, types.AttributeValue] | None,
    links: Sequence[Link] | None,
    start_time: int | None,
    parent_context: Context | None,
) -> Span:
    """The span as the tracer itself starts it (the path for every other pipeline)."""
    if parent_context is None:
        parent_context = trace.set_span_in_context(parent, EMPTY_CONTEXT)
    return tracer.start_span(
        name,
        context=parent_context,
        kind=kind,
        attributes=attributes,
        links=links,
        start_time=start_time,
    )


def dropped_child(tracer: trace.Tracer, parent: Span) -> Span | None:
    """The span :func:`start_span` returns for a child of ``parent`` that the
    sampler drops (a local unsampled parent under the usual ``ParentBased``
    sampler), or None when that is not known without starting it. Lets a caller
    skip preparing the attributes of a span that will never record."""
    if type(parent) is DroppedSpan and parent.tracer is tracer:
        return parent  # the usual case in a sampled-out trace: nothing to look up
    if type(parent) is RecordingSpan:
        return None  # ours are sampled (else they are not RecordingSpans)
    pipeline = _pipeline_for(tracer)
    if pipeline is None or not pipeline.usual_parent_based:
        return None
    parent_span_context = parent.get_span_context()
    # A SpanContext is a typed tuple (trace_id, span_id, is_remote, trace_flags,
    # trace_state, is_valid): unpacked at once rather than by four properties,
    # as this runs for nearly every span of a sampled-out trace.
    _, _, is_remote, trace_flags, _, is_valid = parent_span_context
    if is_valid and not trace_flags & _SAMPLED and not is_remote:
        return _dropped(tracer, parent, parent_span_context)
    return None


class DroppedSpan(NonRecordingSpan):
    """A span sampled out under ``tracer``'s usual ``ParentBased`` sampler: a
    child of it under the same tracer is dropped too, known without looking
    anything up."""

    def __init__(self, context: SpanContext, tracer: trace.Tracer) -> None:
        self._context = context  # NonRecordingSpan.__init__, inlined
        self.tracer = tracer


NON_RECORDING_TYPES = frozenset((NonRecordingSpan, DroppedSpan))
"""``type(span) in NON_RECORDING_TYPES``: a sampled-out span, told without the
ABC ``isinstance`` machinery."""


def _dropped(tracer: trace.Tracer, parent: Span, parent_span_context: SpanContext) -> Span:
    # Dropped, as the SDK would drop it, but without new ids: nothing is ever
    # exported for it, and at a low sampling rate most spans are these.
    if type(parent) is NonRecordingSpan:
        return parent
    if type(parent) is DroppedSpan and parent.tracer is tracer:
        return parent
    return DroppedSpan(parent_span_context, tracer)


def exception_type(exc: BaseException) -> str:
    """``exception.type`` as the SDK writes it: the qualified class name."""
    cls = type(exc)
    module = cls.__module__
    return f"{module}.{cls.__qualname__}" if module and module != "builtins" else cls.__qualname__


def set_internal(span: Span, key: str, value: types.AttributeValue) -> None:
    """Set an attribute the instrumentation made (already a valid value) on any
    span: on ours, straight into its plain dict while it has room."""
    if type(span) is RecordingSpan:
        if span._end_time is not None:
            return
        attributes = span._attributes
        if type(attributes) is dict and (
            key in attributes or len(attributes) < span._pipeline.max_attributes
        ):
            attributes[key] = value
            return
    span.set_attribute(key, value)


def set_internals(span: Span, attributes: dict[str, types.AttributeValue]) -> None:
    """:func:`set_internal` for each of ``attributes`` (one update on ours when
    they fit)."""
    if type(span) is RecordingSpan and span._end_time is None:
        current = span._attributes
        if (
            type(current) is dict
            and len(current) + len(attributes) <= span._pipeline.max_attributes
        ):
            current.update(attributes)
            return
    for key, value in attributes.items():
        set_internal(span, key, value)


def add_internal_event(span: Span, name: str, attributes: dict[str, types.AttributeValue]) -> None:
    """Add an event the instrumentation made (valid values) on any span: on
    ours, into a plain list while it is within the events limit."""
    if type(span) is not RecordingSpan:
        span.add_event(name, attributes)
        return
    if span._end_time is not None:
        return
    event = Event(name, attributes)
    events = span._events
    limit = span._pipeline.limits.max_events
    if type(events) is tuple and not events and (limit is None or limit > 0):
        span._events = [event]
    elif type(events) is list and (limit is None or len(events) < limit):
        events.append(event)
    else:  # at the limit: the SDK's bounded list drops the oldest
        if type(events) is not BoundedList:
            events = span._events = BoundedList.from_seq(limit, events)
        events.append(event)


class RecordingSpan(Span, ReadableSpan):
    """A sampled span of the instrumentation; on ``end`` it is itself the
    ``ReadableSpan`` given to the processors (nothing changes it after that)."""

    def __init__(
        self,
        pipeline: _Pipeline,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, types.AttributeValue],
        links: Sequence[Link] | None,
        start_time: int,
    ) -> None:
        # ReadableSpan's fields, set directly (its __init__ would build a Resource)
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = None
        self._instrumentation_scope = pipeline.scope
        self._parent = parent
        self._start_time = start_time
        self._end_time: int | None = None
        self._attributes: Any = attributes
        self._events: Any = ()
        self._links: Any = _links(pipeline.limits, links) if links else ()
        self._resource = pipeline.resource
        self._status = _UNSET
        self._pipeline = pipeline

    # --- what the instrumentation itself uses ---------------------------------
    # --- opentelemetry.trace.Span ---------------------------------------------
    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]  # always set on ours

    # What the SDK span's accessor returns, without its typing.cast call: marked so
    # that the fast OTLP encoder reads ``_context`` itself, as it does for the SDK's.
    get_span_context.returns_context_field = True  # type: ignore[attr-defined]

    def is_recording(self) -> bool:
        return self._end_time is None

    def _bounded_attributes(self) -> BoundedAttributes:
        attributes = self._attributes
        if type(attributes) is not BoundedAttributes:
            attributes = self._attributes = BoundedAttributes(
                self._pipeline.limits.max_span_attributes, attributes, immutable=False
            )
        return attributes

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self._ended("set_attributes"):
            return
        self._bounded_attributes()._set_items(attributes)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._ended("set_attribute"):
            return
        self._bounded_attributes()[key] = value

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        if self._ended("add_event"):
            return
        limits = self._pipeline.limits
        event = Event(
            name,
            BoundedAttributes(limits.max_event_attributes, attributes, immutable=True),
            timestamp,
        )
        events = self._events
        if type(events) is not BoundedList:
            events = self._events = BoundedList.from_seq(limits.max_events, events)
        events.append(event)

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self._ended("add_link"):
            return
        links = self._links
        if type(links) is not BoundedList:
            links = self._links = BoundedList.from_seq(self._pipeline.limits.max_links, links)
        links.extend(_links(self._pipeline.limits, [Link(context, attributes)]))

    def update_name(self, name: str) -> None:
        if self._ended("update_name"):
            return
        self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended("set_status"):
            return
        # the SDK's rules: OK is final, UNSET is never set
        if self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is StatusCode.UNSET:
                return
            if description is not None:
                logger.warning(
                    "Description %s ignored. Use either `Status` or `(StatusCode, Description)`",
                    description,
                )
            self._status = status
        elif isinstance(status, StatusCode) and status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """As the SDK records it (message and stack trace: this is the API the
        bot's own code calls; the instrumentation records the type only)."""
        event_attributes: dict[str, types.AttributeValue] = {
            "exception.type": exception_type(exception),
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        if attributes:
            event_attributes.update(attributes)
        self.add_event("exception", event_attributes, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            logger.warning("Calling end() on an ended span.")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        attributes = self._attributes
        if type(attributes) is BoundedAttributes:
            attributes._immutable = True
        for end_call in self._pipeline.end_calls:
            end_call(self)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if exc_val is not None and self.is_recording():
            self.record_exception(exc_val, escaped=True)
            self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        super().__exit__(exc_type, exc_val, exc_tb)

    def _ended(self, operation: str) -> bool:
        if self._end_time is None:
            return False
        logger.warning("Tried calling %s on an ended span.", operation)
        return True

    def __repr__(self) -> str:
        return f'RecordingSpan(name="{self._name}", context={self._context})'


def _links(limits: SpanLimits, links: Sequence[Link]) -> Sequence[Link]:
    """Valid links with the SDK's bounds (as ``Span._new_links`` keeps them)."""
    valid = []
    for link in links:
        context = link.context
        if link and context and (context.is_valid or link.attributes or context.trace_state):
            if link.attributes:
                link._attributes = BoundedAttributes(
                    limits.max_link_attributes, link.attributes, immutable=True
                )
            valid.append(link)
    if len(valid) > (limits.max_links or len(valid)):
        return BoundedList.from_seq(limits.max_links, valid)
    return tuple(valid)
