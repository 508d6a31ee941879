"""The asyncpg instrumentation's spans, made the instrumentation's cheap way.

opentelemetry-instrumentation-asyncpg makes a span per query: it parses the
statement, builds the span's attributes, then starts it through its tracer's
``start_as_current_span``. Two things here keep that off a busy bot's back
while the spans stay the instrumentation's own (names, attributes, status):

- Under a gateway event whose trace the sampler dropped when it arrived (its
  stand-in, ``sampled_out``, in ``spans.CURRENT``; see gateway.py), that span
  could only be a non-recording one: the query runs at once instead
  (:func:`skip_under_sampled_out`), and ``db.client.operation.duration`` is
  still recorded (asyncpg_metrics.py).
- Otherwise its tracer starts the span as the instrumentation starts its own
  (``recording.start_span``, made current through ``spans.CURRENT``, encoded
  as it ends) rather than through the SDK's span, context attach and span
  processors: some 100 us less per query here (:func:`use_query_tracer`).
  Whatever that way cannot start exactly as the SDK would (another pipeline,
  attributes the SDK would clean, an explicit context or links) goes to the
  tracer itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import Token
from types import TracebackType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util import types

from discord_otel.instrumentation import recording
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import (
    current_parent,
    in_dropped_event,
    make_current,
    reset_current,
)

__all__ = ["skip_under_sampled_out", "use_query_tracer"]

# The instrumentor's methods that wrapt wraps around asyncpg's (bound when it
# instruments, so an instance attribute of the same name takes their place).
HOOKS = ("_do_execute", "_do_cursor_execute", "_do_prepared_execute")

Hook = Callable[[Any, Any, Any, Any], Awaitable[Any]]


def skip_under_sampled_out(instrumentor: Any) -> None:
    """Before ``instrumentor.instrument()``: its hooks skip the span under a dropped trace."""
    for name in HOOKS:
        hook = getattr(instrumentor, name, None)
        if hook is not None and not getattr(hook, "skips_sampled_out", False):
            setattr(instrumentor, name, _skipping(hook))


def _skipping(hook: Hook) -> Hook:
    async def run(func: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if in_dropped_event():
            return await func(*args, **kwargs)  # what the hook does when suppressed
        return await hook(func, instance, args, kwargs)

    run.skips_sampled_out = True  # type: ignore[attr-defined]
    return run


def use_query_tracer(instrumentor: Any) -> None:
    """After ``instrumentor.instrument()``: its spans start the cheap way (see above)."""
    tracer = getattr(instrumentor, "_tracer", None)
    if tracer is not None and type(tracer) is not QueryTracer:
        instrumentor._tracer = QueryTracer(tracer)


class QueryTracer:
    """The instrumentor's tracer, with ``start_as_current_span`` made cheap;
    everything else is the tracer's own."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tracer, name)

    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Any:
        plain = None
        if context is None and not links:
            plain = recording.plain_attributes(self.tracer, attributes)
        if plain is None:
            return self.tracer.start_as_current_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
                end_on_exit,
            )
        return _CurrentSpan(
            self.tracer,
            name,
            kind,
            plain,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        )


class _CurrentSpan:
    """``with``: a span started and made current as ``trace.use_span`` makes the
    SDK's (an ``Exception`` escaping is recorded and sets an error status; the
    span ends on exit)."""

    __slots__ = (
        "attributes",
        "end_on_exit",
        "kind",
        "name",
        "record_exception",
        "set_status_on_exception",
        "span",
        "start_time",
        "token",
        "tracer",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        kind: SpanKind,
        attributes: dict[str, types.AttributeValue],
        start_time: int | None,
        record_exception: bool,
        set_status_on_exception: bool,
        end_on_exit: bool,
    ) -> None:
        self.tracer = tracer
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self.start_time = start_time
        self.record_exception = record_exception
        self.set_status_on_exception = set_status_on_exception
        self.end_on_exit = end_on_exit

    def __enter__(self) -> Span:
        self.span: Span = INVALID_SPAN
        self.token: Token[Any] | None = None
        try:
            parent, discord_span, proxied = current_parent()
            if parent is None:  # under a dropped event: no span (as the hooks skip it)
                return self.span
            span = self.span = recording.start_span(
                self.tracer, self.name, parent, self.kind, self.attributes, None, self.start_time
            )
            self.token = make_current(span, self.tracer, discord_span, proxied)
        except Exception:  # the query runs all the same, without its span
            report("asyncpg span start")
        return self.span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        span = self.span
        if self.token is not None:
            reset_current(self.token)
        try:
            # only an Exception: a BaseException (a cancellation) is not an error
            if isinstance(exc, Exception) and span.is_recording():
                if self.record_exception:
                    span.record_exception(exc)
                if self.set_status_on_exception:
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            if self.end_on_exit:
                span.end()
