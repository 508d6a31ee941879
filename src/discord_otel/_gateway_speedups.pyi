"""Types of the compiled half of :mod:`discord_otel.instrumentation.gateway`
(_gateway_speedups.c)."""

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
