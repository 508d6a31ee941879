"""Types of the compiled half of :mod:`discord_otel.instrumentation.gateway`,
:mod:`discord_otel.instrumentation.listeners` and
:mod:`discord_otel.instrumentation.rest` (_gateway_speedups.c)."""

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

def current_task() -> Any:
    """The running asyncio task, or None (no running loop, or not in a task)."""

class GatewayParser:
    """A traced gateway parser: counts the event in ``cell[0]``, decides the root's
    sampling with the rule ``rule_for()`` returns, and runs ``func(data)`` under a
    new span held in ``current``: a ``span_type`` one (sampled, or no rule), ended
    when ``func`` returns, or a ``standin`` (dropped)."""

    def __init__(
        self,
        func: Callable[[Any], Any],
        cell: list[int],
        rule_for: Callable[[], tuple[Callable[[], int], int] | None],
        span_processor: Any,
        current: ContextVar[Any],
        span_type: type,
        standin: type,
        time_ns: Callable[[], int],
        tracer: Any,
        name: str,
        attributes: dict[str, Any],
        keep_data: bool,
    ) -> None: ...
    def __call__(self, data: Any) -> Any: ...

class CountingParser:
    """An untraced gateway parser: counts the event in ``cell[0]``, then returns
    ``func(data)``."""

    def __init__(self, func: Callable[[Any], Any], cell: list[int]) -> None: ...
    def __call__(self, data: Any) -> Any: ...

class ListenerRunner:
    """``discord.Client._run_event`` without an interpreter frame (binds like a
    method): returns the coroutine that awaits one listener, times it into
    ``series_for(event_name)``'s histogram series (a ``series_type`` with
    ``counts``, ``total``, ``low`` and ``high`` slots, bucketed by ``bounds``),
    and hands an ``Exception`` to ``failed(event_name, exception, duration)``
    and then ``client.on_error``. While tracing (``traced`` not None), a run
    whose parent in ``current`` is not sampled out gets a deferred ``span_type``
    span made of ``span_for(event_name)`` (tracer, name, attributes; None: no
    span), current while it runs, ended as a timestamp or by ``leave(span, token,
    None)``; with no ``span_for``, or while ``otel_current()`` is not
    ``proxy_context``, such a run is ``traced(...)``'s."""

    def __init__(
        self,
        series_for: Callable[[str], Any],
        failed: Callable[[str, Exception, float, Any], Any],
        traced: Callable[..., Any] | None,
        current: ContextVar[Any],
        bounds: tuple[float, ...],
        series_type: type,
        *,
        span_for: Callable[[str], tuple[Any, str, dict[str, Any]] | None] | None = None,
        span_type: type | None = None,
        otel_current: Callable[[], Any] | None = None,
        proxy_context: Any = None,
        leave: Callable[[Any, Any, None], Any] | None = None,
        time_ns: Callable[[], int] | None = None,
    ) -> None: ...
    def __call__(
        self, client: Any, coro: Callable[..., Any], event_name: str, *args: Any, **kwargs: Any
    ) -> Any: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any: ...

class ListenerScheduler:
    """``discord.Client._schedule_event`` without an interpreter frame (binds like a
    method): ``self.loop.create_task(self._run_event(coro, event_name, *args,
    **kwargs), name=f"discord.py: {event_name}")``, the task names kept per event
    name. A call with fewer than three positional arguments goes to ``original``."""

    def __init__(self, original: Callable[..., Any]) -> None: ...
    def __call__(
        self, client: Any, coro: Callable[..., Any], event_name: str, *args: Any, **kwargs: Any
    ) -> Any: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any: ...

class RestHook:
    """``HTTPClient.request`` (or the webhook adapter's; binds like a method): the
    original's coroutine awaited and timed by a coroutine written in C, open in
    ``calls[current_task()]`` while it runs (``attempts``, ``status``,
    ``template``, ``span``, for json_or_text). Untraced, a success goes into
    ``series_for(method, template, status)``, an interaction callback
    (``callback``) to ``acknowledged(route)``, anything else to
    ``finished(route, call, error, duration)``. While ``rt.tracing`` (unless
    ``current`` holds a sampled-out span and ``otel_current()`` is
    ``proxy_context``: a dropped event's call, untraced), the call begins with
    ``traced_begin(rt, route, template)`` -> ``(span, token)`` and ends with
    ``traced_end(rt, route, call, error, result, duration, token)``. When
    ``runtime.active`` is not ``rt``, the call is ``traced(...)``'s (the Python
    hook). The client's ``session_attribute``, when not the last session seen,
    goes to ``session_seen`` (None: not looked at)."""

    def __init__(
        self,
        original: Callable[..., Any],
        traced: Callable[..., Any],
        runtime: Any,
        rt: Any,
        calls: dict[Any, Any],
        series_for: Callable[[str, str, int], Any],
        finished: Callable[[Any, Any, BaseException | None, float], Any],
        acknowledged: Callable[[Any], Any],
        session_seen: Callable[[Any], Any] | None,
        callback: str,
        session_attribute: str,
        current: ContextVar[Any],
        otel_current: Callable[[], Any],
        proxy_context: Any,
        traced_begin: Callable[[Any, Any, str], tuple[Any, Any]],
        traced_end: Callable[[Any, Any, Any, BaseException | None, Any, float, Any], None],
        bounds: tuple[float, ...],
        series_type: type,
    ) -> None: ...
    def __call__(self, client: Any, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any: ...

class AttemptObserver:
    """``json_or_text(response)`` observed for the task's open :class:`RestHook`
    call in ``calls``: the attempt counted, its status kept and the route's
    ``X-Ratelimit-Remaining`` header put in ``remaining`` (bounded); returns
    ``original(response)``, or ``rate_limited(original, call, response)`` for a
    429. A traced call's attempt is ``python(response)``'s."""

    def __init__(
        self,
        original: Callable[[Any], Any],
        python: Callable[[Any], Any],
        calls: dict[Any, Any],
        remaining: dict[str, Any],
        rate_limited: Callable[[Any, Any, Any], Any],
    ) -> None: ...
    def __call__(self, response: Any) -> Any: ...

class CommandHook:
    """``BotBase.invoke`` (or ``CommandTree._call``, with ``interaction``; binds
    like a method): the original's coroutine awaited by a coroutine written in C.
    Untraced, it is timed there: its handler span (a ``span_type``, or a
    ``standin`` under a dropped event's span in ``current`` while tracing) is in
    ``untraced[current_task()]`` while it runs and counted in ``active`` by kind;
    the command is described as ``(name, kind, attributes)`` by ``describe``
    (interactions begin as ``kinds[data["type"]]`` or ``default_kind``). A success
    goes into ``series_for(name, kind)``, a failure to ``failed(span, name, kind,
    error, duration)``. Traced, it begins with ``traced_begin(rt, subject)`` and
    ends with ``traced_end(rt, subject, begun, error)``. Untraced unknown
    commands and autocompletes, and calls with another runtime, are
    ``traced(...)``'s (the Python hook)."""

    def __init__(
        self,
        original: Callable[..., Any],
        traced: Callable[..., Any],
        runtime: Any,
        rt: Any,
        interaction: bool,
        describe: Callable[[Any], tuple[str, str, dict[str, Any]]],
        kinds: dict[int, tuple[str, str, dict[str, Any]]],
        default_kind: tuple[str, str, dict[str, Any]],
        autocomplete: Any,
        span_type: type,
        standin: type,
        current: ContextVar[Any],
        tracer: Any,
        time_ns: Callable[[], int],
        untraced: dict[Any, Any],
        forget: Callable[[], Any],
        untraced_limit: int,
        active: dict[str, int],
        series_for: Callable[[str, str], Any],
        failed: Callable[[Any, str, str, BaseException | None, float], Any],
        traced_begin: Callable[[Any, Any], Any],
        traced_end: Callable[[Any, Any, Any, BaseException | None], None],
        bounds: tuple[float, ...],
        series_type: type,
    ) -> None: ...
    def __call__(self, client: Any, subject: Any) -> Any: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any: ...
