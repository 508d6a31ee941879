"""Listener runs: ``listener {event}`` spans and ``discord.listener.duration``.

``Client.dispatch`` (and ``Bot.dispatch`` for ``extra_events``) schedule each
listener as a task running ``self._run_event(coro, event_name, ...)``, looked up
per call, so clients built before ``instrument()`` are covered. Our
``_run_event`` does exactly what discord.py's does (the listener's exception
goes, the same object, to ``on_error``) and times the run.

The listener span is deferred (see spans.py): a listener that does nothing but
compute costs a timestamp and a histogram bucket increment.

Where the install compiled it, ``_run_event`` is ``_gateway_speedups.ListenerRunner``:
the same run as a coroutine object written in C, with no interpreter frame --
cheaper than discord.py's own ``_run_event`` -- traced runs included: it makes
their deferred span and ends it as :func:`_run_event` does (by :func:`_leave`
where it was materialised or the run failed). Only a run scheduled while a span
of the bot's own is current goes to :func:`_run_event`. Tests hold both to
discord.py's ``_run_event``, and to each other's spans, scenario by scenario. ``_schedule_event``,
which calls ``_run_event`` and makes the task, is then compiled too
(``ListenerScheduler``: discord.py's, without its frame, its copies of the star
arguments and its f-string per listener): with both, a listener run costs fewer
instructions than without the instrumentation.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_left
from collections.abc import Callable
from contextvars import Token
from time import perf_counter, time_ns
from typing import Any

import discord
from opentelemetry.util import types

from discord_otel import semconv
from discord_otel.instrumentation import gateway, runtime
from discord_otel.instrumentation.metrics import FastHistogram, _Series
from discord_otel.instrumentation.patching import Patcher
from discord_otel.instrumentation.safety import report
from discord_otel.instrumentation.spans import (
    CURRENT,
    PROXY_CONTEXT,
    DiscordSpan,
    error_type,
    leave,
    otel_current,
    start_child,
)

_new_span = object.__new__


class _Listener:
    """Per event name: precomputed span name, attributes and histogram series."""

    __slots__ = (
        "attributes",
        "bounds",
        "errors",
        "histogram",
        "name",
        "series",
        "span_name",
        "tracer",
        "tracing",
    )

    def __init__(self, rt: runtime.Runtime, name: str, histogram: FastHistogram) -> None:
        self.name = name
        self.tracer = rt.tracer
        self.tracing = rt.tracing
        self.bounds = histogram.bounds
        self.span_name = semconv.SPAN_LISTENER.format(name=name)
        self.attributes: dict[str, types.AttributeValue] = {semconv.LISTENER_NAME: name}
        self.histogram = histogram
        self.series = histogram.series(name, {semconv.LISTENER_NAME: name})
        self.errors: dict[str, _Series] = {}

    def error_series(self, kind: str) -> _Series:
        series = self.errors.get(kind)
        if series is None:
            series = self.errors[kind] = self.histogram.series(
                (self.name, kind), {semconv.LISTENER_NAME: self.name, semconv.ERROR_TYPE: kind}
            )
        return series


_listeners: dict[str, _Listener] = {}


def _listener(rt: runtime.Runtime, name: str) -> _Listener:
    found = _listeners.get(name)
    if found is None:
        found = _Listener(rt, name, rt.instruments.listener_duration)
        if len(_listeners) < 10_000:  # event names come from code, but stay bounded
            _listeners[name] = found
    return found


_tracing = False  # whether listener runs get a span
_runner: Any = None  # the compiled _run_event last chosen


def refresh() -> None:
    """Forget cached per-listener state and pick ``_run_event`` (tracing may have
    been switched on)."""
    global _tracing
    _listeners.clear()
    rt = runtime.active
    _tracing = rt is not None and rt.tracing
    installed = vars(discord.Client).get("_run_event")
    if installed is not None and installed in (_run_event, _run_event_untraced, _runner):
        discord.Client._run_event = _chosen_run_event()  # type: ignore[method-assign]


def _chosen_run_event() -> Callable[..., Any]:
    """The compiled runner where built (it hands the runs that get a span to
    :func:`_run_event`), else the Python ``_run_event`` for the mode."""
    global _runner
    rt = runtime.active
    _runner = gateway.compiled(
        rt,
        "compiled listener runner",
        lambda built: built.ListenerRunner(
            _series_for,
            _failed,
            _run_event if _tracing else None,
            CURRENT,
            rt.instruments.listener_duration.bounds,  # type: ignore[union-attr]
            _Series,
            span_for=_span_for if _tracing else None,
            span_type=DiscordSpan,
            otel_current=otel_current,
            proxy_context=PROXY_CONTEXT,
            leave=_leave,
            time_ns=time_ns,
        ),
    )
    if _runner is not None:
        return _runner  # type: ignore[no-any-return]
    return _run_event if _tracing else _run_event_untraced


async def _run_event(
    self: Any, coro: Callable[..., Any], event_name: str, *args: Any, **kwargs: Any
) -> None:
    """``Client._run_event`` while tracing: one listener run, timed, under a
    deferred span.

    Same behaviour as discord.py's ``_run_event`` (2.0 to 2.7): run the
    listener, ignore ``CancelledError``, hand any other exception to
    ``self.on_error``. It replaces ``_run_event`` rather than wrapping it
    because a wrapper around ``_run_event`` never sees the listener's
    exception, and a wrapper around the listener costs a coroutine per run on
    the hottest path of the bot. It is the coroutine discord.py schedules as a
    task, so nothing of ours runs when the event is dispatched: the parent --
    the event's span, held in ``spans.CURRENT`` while it is parsed -- comes
    with the context the task copied. Under an event whose trace is sampled out
    the run only does its metrics work.
    """
    listener = _listeners.get(event_name)
    if listener is None:
        listener = _new_listener(event_name)
    span = None
    token = None
    otel_token = None
    if listener is not None and listener.tracing:
        parent = CURRENT.get()
        if parent is None or not parent.sampled_out:
            try:
                # DiscordSpan.__init__ inlined (one frame less per run on the hottest path)
                span = _new_span(DiscordSpan)
                span.tracer = listener.tracer
                span.name = listener.span_name
                span.attributes = listener.attributes
                span.start_ns = time_ns()
                span.real = span.end_ns = span.error = None
                if otel_current() is PROXY_CONTEXT:  # start_child's usual case, inlined
                    span.parent = parent
                    token = CURRENT.set(span)
                else:
                    token, otel_token = start_child(span, parent)
            except Exception:
                report("listener start")
    start = perf_counter()
    try:
        await coro(*args, **kwargs)
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        _record_error(listener, span, exc, perf_counter() - start)
        try:
            await self.on_error(event_name, *args, **kwargs)
        except asyncio.CancelledError:
            pass
        finally:
            _leave(span, token, otel_token)
        return
    duration = perf_counter() - start
    if listener is not None:  # inlined FastHistogram.record: the hottest record
        series = listener.series
        series.counts[bisect_left(listener.bounds, duration)] += 1
        series.total += duration
        if duration < series.low:
            series.low = duration
        if duration > series.high:
            series.high = duration
    if span is not None:
        if otel_token is None and span.real is None and span.error is None:
            try:  # the usual case, inlined: never needed, stays a timestamp
                CURRENT.reset(token)  # type: ignore[arg-type]
                span.end_ns = time_ns()
            except Exception:
                report("listener end")
        else:
            _leave(span, token, otel_token)


async def _run_event_untraced(
    self: Any, coro: Callable[..., Any], event_name: str, *args: Any, **kwargs: Any
) -> None:
    """``Client._run_event`` while nothing is traced: :func:`_run_event` without
    its span (metrics only: no parent lookup, no span checks per run)."""
    listener = _listeners.get(event_name)
    if listener is None:
        listener = _new_listener(event_name)
    start = perf_counter()
    try:
        await coro(*args, **kwargs)
    except asyncio.CancelledError:
        pass
    except Exception as exc:
        _record_error(listener, None, exc, perf_counter() - start)
        with contextlib.suppress(asyncio.CancelledError):
            await self.on_error(event_name, *args, **kwargs)
        return
    duration = perf_counter() - start
    if listener is not None:  # inlined FastHistogram.record, as in _run_event
        series = listener.series
        series.counts[bisect_left(listener.bounds, duration)] += 1
        series.total += duration
        if duration < series.low:
            series.low = duration
        if duration > series.high:
            series.high = duration


def _leave(
    span: DiscordSpan | None, token: Token[DiscordSpan | None] | None, otel_token: object
) -> None:
    try:
        if token is not None:
            if otel_token is None:
                CURRENT.reset(token)
            else:
                leave((token, otel_token))
        if span is not None:
            if span.real is None and span.error is None:
                span.end_ns = time_ns()  # never needed: stays a timestamp
            else:
                span.finish()
    except Exception:
        report("listener end")


def _series_for(event_name: str) -> _Series | None:
    """The compiled runner's lookup: the histogram series of ``event_name``'s runs."""
    listener = _listener_for(event_name)
    return listener.series if listener is not None else None


def _span_for(event_name: str) -> tuple[Any, str, dict[str, types.AttributeValue]] | None:
    """The compiled runner's look-up, once per event name: what ``event_name``'s
    listener spans are made of (tracer, name, attributes), or None for no span."""
    listener = _listener_for(event_name)
    if listener is None or not listener.tracing:
        return None
    return (listener.tracer, listener.span_name, listener.attributes)


def _failed(
    event_name: str, error: Exception, duration: float, span: DiscordSpan | None = None
) -> None:
    """The compiled runner's record of a failed run (on its span, if it has one)."""
    _record_error(_listener_for(event_name), span, error, duration)


def _listener_for(event_name: str) -> _Listener | None:
    return _listeners.get(event_name) or _new_listener(event_name)


def _new_listener(event_name: str) -> _Listener | None:
    rt = runtime.active
    if rt is None:
        return None
    try:
        return _listener(rt, event_name)
    except Exception:
        report("listener")
        return None


def _record_error(
    listener: _Listener | None, span: DiscordSpan | None, error: Exception, duration: float
) -> None:
    if listener is None:
        return
    try:
        if span is not None:
            span.record_error(error)
        real = span.real if span is not None else None  # failures carry an exemplar
        listener.histogram.record(listener.error_series(error_type(error)), duration, real)
    except Exception:
        report("listener record")


def instrument(patcher: Patcher) -> None:
    refresh()
    rt = runtime.active
    if rt is not None:
        rt.on_tracing_change.append(refresh)
    patcher.replace(discord.Client, "_run_event", _chosen_run_event())
    scheduler = gateway.compiled(
        rt,
        "compiled listener scheduler",
        lambda built: built.ListenerScheduler(vars(discord.Client)["_schedule_event"]),
    )
    if scheduler is not None:
        patcher.replace(discord.Client, "_schedule_event", scheduler)


def uninstrument() -> None:
    global _tracing, _runner
    _listeners.clear()
    _tracing = False
    _runner = None
