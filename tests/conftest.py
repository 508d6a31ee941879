"""Fixtures shared by the whole suite; the real services live in tests/fixtures/."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.prometheus",
    "tests.fixtures.otlp_receiver",
]
