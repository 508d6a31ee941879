"""asyncpg queries under a dropped trace skip the span instrumentation.

opentelemetry-instrumentation-asyncpg makes a span per query: it parses the
statement, builds the span's attributes, asks the sampler, attaches a context.
Under a gateway event whose trace the sampler dropped when it arrived (its
stand-in, ``sampled_out``, in ``spans.CURRENT``; see gateway.py), that span
could only be a non-recording one: the query runs at once instead, and
``db.client.operation.duration`` is still recorded (asyncpg_metrics.py). With a
sampled event, a span of the bot's own current, or no Discord event at all,
queries go through the instrumentation as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from discord_otel.instrumentation.spans import in_dropped_event

__all__ = ["skip_under_sampled_out"]

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
