"""A throwaway PostgreSQL server for the benchmarks: the test suite's own launcher
(tests/fixtures/postgres.py), without pytest's failure handling."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tests.fixtures.postgres import PostgresUnavailable, running_postgres


@contextmanager
def postgres() -> Iterator[str | None]:
    """Yields a DSN, or None (with a note) when PostgreSQL is missing or fails to start."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except (PostgresUnavailable, RuntimeError) as exc:
            print(f"benchmarks: {exc}; W2 runs without its database query")
            yield None
            return
        yield server.dsn
