"""``discord.ext.tasks`` loops: each iteration is its own trace.

``Loop.start`` (called by the bot) remembers the span context current where
the loop was started and swaps ``loop.coro`` for a coroutine function made with
``functools.wraps`` -- still a coroutine function, same ``__name__`` and
``__qualname__`` (discord.py uses them) -- that runs each iteration under a new
root span ``task {name}`` linked to that context, records
``discord.task.duration`` and, on success, ``discord.task.last_success``.
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable
from typing import Any

from discord.ext import tasks
from opentelemetry import trace
from opentelemetry.trace import SpanContext

from discord_otel import semconv
from discord_otel.instrumentation import runtime
from discord_otel.instrumentation.metrics import _Series
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import (
    ROLE_TASK,
    DiscordSpan,
    enter,
    error_type,
    leave,
    link_to,
)

_MARK = "__discord_otel_task__"
_loops: weakref.WeakSet[Any] = weakref.WeakSet()
_started_from: weakref.WeakKeyDictionary[Any, SpanContext] = weakref.WeakKeyDictionary()
_series_cache: dict[tuple[str, str | None], _Series] = {}


def task_name(coro: Any) -> str:
    """The loop function's qualified name (``Cog.method``), without ``<locals>`` prefixes."""
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None)
    if not isinstance(name, str):
        return "task"
    return name.rpartition("<locals>.")[2]


def _wrap_coro(loop: Any, coro: Callable[..., Any]) -> Callable[..., Any]:
    name = task_name(coro)
    span_name = semconv.SPAN_TASK.format(name=name)

    @functools.wraps(coro)
    async def iteration(*args: Any, **kwargs: Any) -> Any:
        rt = runtime.active
        if rt is None:
            return await coro(*args, **kwargs)
        span = None
        tokens = None
        try:
            if rt.tracing:
                span = DiscordSpan(rt.tracer, span_name, {semconv.TASK_NAME: name}, time.time_ns())
                span.role = ROLE_TASK
                links = link_to(_started_from.get(loop))
                if links:
                    span.links = list(links)
                tokens = enter(span)
        except Exception:
            report("task start")
        error: BaseException | None = None
        start = time.perf_counter()
        try:
            return await coro(*args, **kwargs)
        except BaseException as exc:
            error = exc
            raise
        finally:
            duration = time.perf_counter() - start
            try:
                if tokens is not None:
                    leave(tokens)
                if span is not None:
                    if error is not None and isinstance(error, Exception):
                        span.record_error(error)
                    span.finish(force=True)
                kind = error_type(error) if isinstance(error, Exception) else None
                if error is None:
                    rt.instruments.task_last_success[name] = time.time()
                key = (name, kind)
                series = _series_cache.get(key)
                histogram = rt.instruments.task_duration
                if series is None:
                    attributes: dict[str, Any] = {semconv.TASK_NAME: name}
                    if kind is not None:
                        attributes[semconv.ERROR_TYPE] = kind
                    series = _series_cache[key] = histogram.series(key, attributes)
                histogram.record(series, duration, span.real if span is not None else None)
            except Exception:
                report("task end")

    setattr(iteration, _MARK, True)
    return iteration


def _start(
    wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    rt = runtime.active
    if rt is not None:
        try:
            if not getattr(instance.coro, _MARK, False):
                instance.coro = _wrap_coro(instance, instance.coro)
                _loops.add(instance)
            if rt.tracing:
                current = trace.get_current_span()
                context = current.get_span_context()
                if context.is_valid:
                    _started_from[instance] = context
                else:
                    _started_from.pop(instance, None)
        except Exception:
            report("task loop start")
    return wrapped(*args, **kwargs)


def instrument(patcher: Patcher) -> None:
    patcher.wrap(tasks.Loop, "start", _start)


def uninstrument() -> None:
    for loop in list(_loops):
        coro = loop.coro
        if getattr(coro, _MARK, False):
            loop.coro = coro.__wrapped__
    _loops.clear()
    _series_cache.clear()
