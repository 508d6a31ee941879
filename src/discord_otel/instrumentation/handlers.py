"""The common life of a command, component, modal or autocomplete span.

A traced handler span is always exported (``finish(force=True)``) and
materialises its deferred parents (listener, gateway); it is current in
``CURRENT`` while the handler runs. An untraced one -- metrics only, or under an
event whose trace is sampled out -- never becomes a real span: it holds the
handler's failure (``dispatch_error`` and friends record it there) and its
Discord context, and is kept by task rather than in ``CURRENT``: a ContextVar's
set and reset each build a new context mapping and the set a token, GC-tracked
objects that live as long as the command and, per command, made the cyclic
GC's collections a quarter more frequent on a command workload
(benchmarks/diagnosis.md). Nothing below an untraced handler needs it as a
parent: every span there is dropped or not made at all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from contextvars import Token
from typing import Any

from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind
from opentelemetry.util import types

from discord_otel.instrumentation import runtime
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import (
    CURRENT,
    ROLE_HANDLER,
    DiscordSpan,
    EnterTokens,
    current,
    leave,
    start_child,
)


class HandlerSpan(DiscordSpan):
    """The span of a command, component, modal or autocomplete (no instance
    ``__dict__`` needed for its role and kind)."""

    __slots__ = ()
    role = ROLE_HANDLER
    kind = SpanKind.SERVER


class SampledOutHandlerSpan(HandlerSpan):
    """A handler's span under an event whose trace is sampled out: never
    exported, it holds the failure, and as a parent it is that trace's dropped
    root (so a REST call under it knows at once that it is not traced)."""

    __slots__ = ()
    sampled_out = True

    def materialise(self) -> Span:
        real = self.real
        if real is None:
            parent = self.parent
            real = self.real = parent.materialise() if parent is not None else INVALID_SPAN
        return real


_new_span = object.__new__

# The untraced handler each task runs (a task runs one handler at a time; an
# outer one is restored when an inner one closes). Bounded: closed in the
# handler's ``finally``, and a handler whose task is gone is dropped below.
_untraced: dict[asyncio.Task[Any], HandlerSpan] = {}
_MAX_UNTRACED = 10_000


def _python_task_or_none() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running event loop in this thread
        return None


task_or_none: Callable[[], asyncio.Task[Any] | None] = _python_task_or_none
try:  # the same without a frame of its own (asyncio.current_task is Python before 3.12)
    from discord_otel import _gateway_speedups

    task_or_none = _gateway_speedups.current_task
except ImportError:  # not built here
    pass


class Handler:
    """A handler's scope: its span current while it runs, its duration timed.

    ``traced`` is False in metrics-only mode and under an event whose trace is
    sampled out (the span then only holds the failure and stands for the
    handler, found by its task)."""

    __slots__ = ("outer", "perf_start", "rt", "span", "task", "tokens", "traced")

    def __init__(
        self,
        rt: runtime.Runtime,
        name: str,
        attributes: dict[str, types.AttributeValue],
        links: Sequence[Link] = (),
    ) -> None:
        self.rt = rt
        parent = None  # without tracing none is needed
        span_type = HandlerSpan
        traced = rt.tracing
        if traced:
            parent = current()
            if parent is not None and parent.sampled_out:
                traced = False
                span_type = SampledOutHandlerSpan
        self.traced = traced
        span: HandlerSpan = _new_span(span_type)
        # DiscordSpan.__init__ inlined (one frame less per handler)
        span.tracer = rt.tracer
        span.name = name
        span.attributes = attributes
        span.start_ns = time.time_ns()
        span.real = span.end_ns = span.parent = span.error = None
        if links:
            span.links = list(links)
        self.span = span
        self.tokens: EnterTokens | Token[DiscordSpan | None] | None = None
        self.task = self.outer = None
        if traced:
            self.tokens = start_child(span, parent)
        else:
            span.parent = parent
            task = self.task = task_or_none()
            if task is None:  # not in a task: nothing to key it by
                self.tokens = CURRENT.set(span)
            else:
                self.outer = _untraced.get(task)
                if len(_untraced) >= _MAX_UNTRACED:
                    _forget_finished_tasks()
                _untraced[task] = span
        self.perf_start = time.perf_counter()

    def close(self) -> float:
        """Leave the scope and export the span; returns the duration in seconds."""
        duration = time.perf_counter() - self.perf_start
        tokens = self.tokens
        if isinstance(tokens, tuple):
            leave(tokens)
        elif tokens is not None:
            CURRENT.reset(tokens)
        task = self.task
        if task is not None:
            if self.outer is None:
                _untraced.pop(task, None)
            else:
                _untraced[task] = self.outer
        if self.traced:
            self.span.finish(force=True)
        return duration


def _forget_finished_tasks() -> None:
    for task in [task for task in _untraced if task.done()]:
        del _untraced[task]


def innermost_span() -> DiscordSpan | None:
    """The current Discord span: the task's untraced handler, else ``CURRENT``'s."""
    if _untraced:
        span = _untraced.get(task_or_none())  # type: ignore[arg-type]
        if span is not None:
            return span
    return current()


def current_handler() -> DiscordSpan | None:
    span = innermost_span()
    return span.handler() if span is not None else None


def record_error_on_handler(error: BaseException) -> None:
    handler = current_handler()
    if handler is not None and handler.error is None:
        handler.record_error(error)


Wrapper = Callable[
    [Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Coroutine[Any, Any, Any]
]


def error_argument_recorder(site: str) -> Wrapper:
    """A wrapper for discord.py's error dispatchers (``Command.dispatch_error``,
    ``app_commands.Command._invoke_error_handlers``): their second argument is the
    exception discord.py caught, recorded on the current handler span before the
    original runs unchanged."""

    async def record_error_argument(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        if runtime.active is not None:
            try:
                error = args[1] if len(args) > 1 else kwargs.get("error")
                if isinstance(error, BaseException):
                    record_error_on_handler(error)
            except Exception:
                report(site)
        return await wrapped(*args, **kwargs)

    return record_error_argument


class ErrorLogFilter(logging.Filter):
    """Marks the current handler failed when discord.py logs the exception it swallowed.

    discord.py reports autocomplete and dynamic-item callback failures only by
    ``_log.exception(...)``; this filter never drops a record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if record.exc_info and runtime.active is not None:
                error = record.exc_info[1]
                if isinstance(error, BaseException):
                    record_error_on_handler(error)
        except Exception:
            report("error log filter")
        return True


class ErrorRecorder:
    """Stands in for a view's or modal's ``on_error`` on the instance: records, then delegates."""

    __slots__ = ("had_instance_attribute", "original")

    def __init__(self, original: Callable[..., Any], had_instance_attribute: bool) -> None:
        self.original = original
        self.had_instance_attribute = had_instance_attribute

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            if len(args) >= 2 and isinstance(args[1], BaseException):
                record_error_on_handler(args[1])
        except Exception:
            report("on_error recorder")
        return self.original(*args, **kwargs)
