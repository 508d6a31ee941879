"""``db.client.operation.duration`` for asyncpg.

opentelemetry-instrumentation-asyncpg makes spans only, and spans are sampled;
this small instrumentor wraps the same asyncpg methods to record the semantic
conventions' histogram for every call, at any sampling rate. Attributes:
``db.system.name=postgresql``, ``db.operation.name`` (the statement's leading
SQL keyword, from a fixed list so query text never becomes a series) and
``error.type`` on failure.

It also takes ``Connection.reset`` out of the instrumentation (spans and this
histogram): the housekeeping batch asyncpg's pool runs on every release
(``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;``) was a
second span per pooled query, and counted as a ``SELECT``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Collection
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, unwrap

from discord_otel import semconv
from discord_otel.instrumentation import runtime
from discord_otel.instrumentation.spans import in_dropped_event
from discord_otel.version import __version__

DB_SYSTEM_POSTGRESQL = "postgresql"

_CONNECTION_METHODS = ("execute", "executemany", "fetch", "fetchval", "fetchrow")
_CURSOR_METHODS = ("fetch", "forward", "fetchrow")
_PREPARED_METHODS = ("fetch", "fetchval", "fetchrow", "executemany", "fetchmany")

# Leading keywords reported as db.operation.name; anything else is left out.
SQL_OPERATIONS = frozenset(
    (
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "MERGE",
        "WITH",
        "VALUES",
        "TABLE",
        "CREATE",
        "DROP",
        "ALTER",
        "TRUNCATE",
        "BEGIN",
        "START",
        "COMMIT",
        "ROLLBACK",
        "SAVEPOINT",
        "RELEASE",
        "COPY",
        "CALL",
        "DO",
        "EXECUTE",
        "PREPARE",
        "DEALLOCATE",
        "DECLARE",
        "FETCH",
        "MOVE",
        "CLOSE",
        "SET",
        "RESET",
        "SHOW",
        "EXPLAIN",
        "ANALYZE",
        "VACUUM",
        "LISTEN",
        "UNLISTEN",
        "NOTIFY",
        "LOCK",
        "GRANT",
        "REVOKE",
        "REFRESH",
        "CLUSTER",
        "REINDEX",
        "COMMENT",
    )
)
_LEADING_COMMENTS = re.compile(r"^\s*(?:(?:/\*.*?\*/|--[^\n]*\n)\s*)*", re.DOTALL)


def operation_name(query: Any) -> str | None:
    if not isinstance(query, str):
        return None
    return _operation_of(query)


@functools.lru_cache(maxsize=1024)  # a bot's statements are mostly constants: parse each once
def _operation_of(query: str) -> str | None:
    text = _LEADING_COMMENTS.sub("", query, count=1)
    match = re.match(r"[A-Za-z]+", text)
    if match is None:
        return None
    keyword = match.group(0).upper()
    return keyword if keyword in SQL_OPERATIONS else None


class AsyncPGMetricsInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Records ``db.client.operation.duration`` around asyncpg calls."""

    _histogram: Any = None

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("asyncpg >= 0.12.0",)

    def _instrument(self, **kwargs: Any) -> None:
        import asyncpg.connection
        import asyncpg.cursor
        import asyncpg.prepared_stmt
        import wrapt

        meter = metrics.get_meter(
            semconv.SCOPE_NAME, __version__, meter_provider=kwargs.get("meter_provider")
        )
        AsyncPGMetricsInstrumentor._histogram = meter.create_histogram(
            semconv.METRIC_DB_OPERATION_DURATION,
            unit="s",
            description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=list(semconv.BUCKETS_DB),
        )
        for method in _CONNECTION_METHODS:
            wrapt.wrap_function_wrapper(
                "asyncpg.connection",
                f"Connection.{method}",
                _wrapper(lambda i, a: a[0] if a else None),
            )
        cursor_query: Callable[[Any, Any], Any] = lambda i, a: getattr(i, "_query", None)  # noqa: E731
        for method in _CURSOR_METHODS:
            wrapt.wrap_function_wrapper(
                "asyncpg.cursor", f"Cursor.{method}", _wrapper(cursor_query)
            )
        wrapt.wrap_function_wrapper(
            "asyncpg.cursor", "CursorIterator.__anext__", _wrapper(cursor_query)
        )
        for method in _PREPARED_METHODS:
            if hasattr(asyncpg.prepared_stmt.PreparedStatement, method):
                wrapt.wrap_function_wrapper(
                    "asyncpg.prepared_stmt", f"PreparedStatement.{method}", _wrapper(cursor_query)
                )
        if hasattr(asyncpg.connection.Connection, "reset"):
            wrapt.wrap_function_wrapper("asyncpg.connection", "Connection.reset", _untraced_reset)

    def _uninstrument(self, **kwargs: Any) -> None:
        import asyncpg.connection
        import asyncpg.cursor
        import asyncpg.prepared_stmt

        for method in _CONNECTION_METHODS:
            unwrap(asyncpg.connection.Connection, method)
        for method in _CURSOR_METHODS:
            unwrap(asyncpg.cursor.Cursor, method)
        unwrap(asyncpg.cursor.CursorIterator, "__anext__")
        if hasattr(asyncpg.connection.Connection, "reset"):
            unwrap(asyncpg.connection.Connection, "reset")
        for method in _PREPARED_METHODS:
            if hasattr(asyncpg.prepared_stmt.PreparedStatement, method):
                unwrap(asyncpg.prepared_stmt.PreparedStatement, method)


def _wrapper(query_of: Callable[[Any, Any], Any]) -> Callable[..., Any]:
    async def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        histogram = AsyncPGMetricsInstrumentor._histogram
        if histogram is None or not is_instrumentation_enabled():
            return await wrapped(*args, **kwargs)
        error: str | None = None
        started = time.perf_counter()
        try:
            return await wrapped(*args, **kwargs)
        except StopAsyncIteration:
            raise
        except BaseException as exc:
            error = type(exc).__qualname__
            raise
        finally:
            _record(histogram, query_of(instance, args), error, time.perf_counter() - started)

    return wrapper


def _record(histogram: Any, query: Any, error: str | None, duration: float) -> None:
    operation = operation_name(query)
    rt = runtime.active
    if rt is None:  # discord.py not instrumented: straight into the SDK
        histogram.record(duration, _attributes(operation, error))
        return
    # Aggregated in process like discord-otel's own histograms (metrics.py): an
    # SDK record costs more than the query's own client-side work.
    fast = rt.instruments.adopt(histogram, semconv.BUCKETS_DB)
    series = fast.known(operation, error) or fast.series(
        (operation, error), _attributes(operation, error)
    )
    # No exemplar under a dropped event: asking the proxy span whether it is sampled
    # would make the event's dropped root exist only to answer no.
    exemplar = None if not rt.tracing or in_dropped_event() else trace.get_current_span()
    fast.record(series, duration, exemplar)


def _attributes(operation: str | None, error: str | None) -> dict[str, Any]:
    attributes = {semconv.DB_SYSTEM_NAME: DB_SYSTEM_POSTGRESQL}
    if operation is not None:
        attributes[semconv.DB_OPERATION_NAME] = operation
    if error is not None:
        attributes[semconv.ERROR_TYPE] = error
    return attributes


async def _untraced_reset(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    """``Connection.reset`` with instrumentation suppressed (see the module docstring)."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        return await wrapped(*args, **kwargs)
    finally:
        otel_context.detach(token)
