"""Types of the compiled half of :mod:`discord_otel.instrumentation.gateway` and
:mod:`discord_otel.instrumentation.listeners` (_gateway_speedups.c)."""

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

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
    whose parent in ``current`` is not sampled out is ``traced(...)``'s."""

    def __init__(
        self,
        series_for: Callable[[str], Any],
        failed: Callable[[str, Exception, float], Any],
        traced: Callable[..., Any] | None,
        current: ContextVar[Any],
        bounds: tuple[float, ...],
        series_type: type,
    ) -> None: ...
    def __call__(
        self, client: Any, coro: Callable[..., Any], event_name: str, *args: Any, **kwargs: Any
    ) -> Any: ...
    def __get__(self, instance: Any, owner: type | None = None) -> Any: ...
