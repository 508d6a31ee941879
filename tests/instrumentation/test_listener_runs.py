"""Listener runs on their own: discord.py's ``Client._run_event`` against ours, the
Python one and the compiled one (``_gateway_speedups.ListenerRunner``), scenario by
scenario -- the same return value, the same exceptions to ``on_error`` (and the same
``sys.exc_info()`` inside it), the same cancellations -- and each run in the
``discord.listener.duration`` histogram. (test_metrics.py and test_sampling.py run
them through a real bot.)"""

from __future__ import annotations

import asyncio
import sys
import traceback
import types
from collections.abc import Callable, Generator, Iterator
from typing import Any

import discord
import pytest
from opentelemetry.trace import NoOpTracerProvider
from tests.instrumentation.conftest import Telemetry, finished_task, reinstrument

EVENT = "on_thing"


class Stop(BaseException):
    """Not an ``Exception``: ``_run_event`` lets it through."""


class Client:
    """What ``_run_event`` needs of a client: ``on_error``, recording what it saw."""

    on_error_raises: BaseException | None = None

    def __init__(self) -> None:
        self.errors: list[tuple[str, tuple[Any, ...], dict[str, Any], Any, Any, str]] = []

    async def on_error(self, event_name: str, *args: Any, **kwargs: Any) -> None:
        handled = sys.exc_info()[1]
        text = traceback.format_exc()
        await asyncio.sleep(0)  # the failure stays the handled exception across awaits
        self.errors.append((event_name, args, kwargs, handled, sys.exc_info()[1], text))
        if self.on_error_raises is not None:
            raise self.on_error_raises


@pytest.fixture
def original(telemetry: Telemetry) -> Callable[..., Any]:
    telemetry.uninstrument()
    return vars(discord.Client)["_run_event"]  # type: ignore[no-any-return]


@pytest.fixture
def ours(telemetry: Telemetry, original: Callable[..., Any], gateway_parser: str) -> Iterator[Any]:
    """Our ``_run_event`` while only metrics are recorded (no tracer)."""
    reinstrument(telemetry, NoOpTracerProvider())
    installed = vars(discord.Client)["_run_event"]
    assert installed is not original
    compiled = type(installed).__module__ == "discord_otel._gateway_speedups"
    assert compiled == (gateway_parser == "compiled")
    yield installed
    telemetry.uninstrument()


def bound(run_event: Any) -> Client:
    """A client whose class has ``run_event`` as its ``_run_event`` (bound like a method)."""
    return type("Bot", (Client,), {"_run_event": run_event})()  # type: ignore[no-any-return]


async def outcome(
    run_event: Any,
    listener: Callable[..., Any],
    on_error_raises: BaseException | None = None,
    cancel_after: int | None = None,
) -> dict[str, Any]:
    """Run ``listener`` as discord.py schedules it, and what a user could observe."""
    client = bound(run_event)
    client.on_error_raises = on_error_raises
    coroutine = client._run_event(listener, EVENT, 1, y=2)  # type: ignore[attr-defined]
    assert asyncio.iscoroutine(coroutine)
    task, error = await finished_task(coroutine, f"discord.py: {EVENT}", cancel_after)
    return {
        "cancelled": task.cancelled(),
        "result": None if task.cancelled() or error is not None else task.result(),
        "error": type(error).__name__ if error is not None else None,
        "error context": type(error.__context__).__name__ if error is not None else None,
        "on_error": [
            (name, args, kwargs, type(handled).__name__, type(later).__name__)
            for name, args, kwargs, handled, later, _ in client.errors
        ],
        "traceback names the listener": all(
            listener.__name__ in text for *_, text in client.errors
        ),
    }


async def succeeds(x: int, *, y: int) -> int:
    await asyncio.sleep(0)
    return x + y


async def fails(x: int, *, y: int) -> None:
    await asyncio.sleep(0)
    raise KeyError(x)


async def fails_at_once(x: int, *, y: int) -> None:
    raise KeyError(x)


async def is_cancelled(x: int, *, y: int) -> None:
    await asyncio.sleep(0)
    raise asyncio.CancelledError


async def stops(x: int, *, y: int) -> None:
    await asyncio.sleep(0)
    raise Stop


def not_a_coroutine(x: int, *, y: int) -> None:
    """A plain function: ``await None`` fails inside the ``try``."""


async def sleeps(x: int, *, y: int) -> None:
    await asyncio.sleep(3600)


@types.coroutine
def generator_based(x: int, *, y: int) -> Generator[Any, None, None]:
    """A ``@types.coroutine`` generator: ``await`` takes it as it is."""
    yield from asyncio.sleep(0).__await__()
    raise KeyError(x)


SCENARIOS: dict[str, dict[str, Any]] = {
    "succeeds": {"listener": succeeds},
    "fails": {"listener": fails},
    "fails before its first await": {"listener": fails_at_once},
    "is cancelled from inside": {"listener": is_cancelled},
    "raises a BaseException": {"listener": stops},
    "is not a coroutine": {"listener": not_a_coroutine},
    "fails, and so does on_error": {"listener": fails, "on_error_raises": ValueError("again")},
    "fails, and on_error is cancelled": {
        "listener": fails,
        "on_error_raises": asyncio.CancelledError(),
    },
    "is cancelled while it waits": {"listener": sleeps, "cancel_after": 2},
    "is cancelled before it starts": {"listener": sleeps, "cancel_after": 0},
    "is a generator-based coroutine": {"listener": generator_based},
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_run_behaves_as_discord_pys(
    scenario: str, ours: Any, original: Callable[..., Any]
) -> None:
    expected = await outcome(original, **SCENARIOS[scenario])
    assert await outcome(ours, **SCENARIOS[scenario]) == expected


async def test_what_discord_pys_run_does(original: Callable[..., Any]) -> None:
    """The reference itself, spelled out: the scenarios above compare against it."""
    assert (await outcome(original, succeeds))["result"] is None
    failed = await outcome(original, fails)
    assert failed["on_error"] == [(EVENT, (1,), {"y": 2}, "KeyError", "KeyError")]
    assert failed["traceback names the listener"]
    assert (await outcome(original, stops))["error"] == "Stop"
    again = await outcome(original, fails, on_error_raises=ValueError("again"))
    assert (again["error"], again["error context"]) == ("ValueError", "KeyError")
    assert (await outcome(original, sleeps, cancel_after=0))["cancelled"]


async def test_a_run_can_be_awaited_directly(ours: Any) -> None:
    client = bound(ours)
    assert await client._run_event(succeeds, EVENT, 1, y=2) is None  # type: ignore[attr-defined]
    assert await client._run_event(fails, EVENT, 3, y=4) is None  # type: ignore[attr-defined]
    assert [(name, args) for name, args, *_ in client.errors] == [(EVENT, (3,))]


async def test_each_run_is_in_the_histogram(telemetry: Telemetry, ours: Any) -> None:
    for _ in range(5):
        await outcome(ours, succeeds)
    for _ in range(3):
        await outcome(ours, fails)
    await outcome(ours, is_cancelled)  # ignored, as discord.py does: a run like any other
    metric = telemetry.metrics()["discord.listener.duration"]
    counts = {
        point.attributes.get("error.type"): point.count
        for point in metric.data.data_points
        if point.attributes["discord.listener.name"] == EVENT
    }
    assert counts == {None: 6, "KeyError": 3}
    durations = [point for point in metric.data.data_points if "error.type" not in point.attributes]
    assert sum(durations[0].bucket_counts) == 6
    assert 0 < durations[0].min <= durations[0].max < 60
