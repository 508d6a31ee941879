"""Listener runs on their own: discord.py's ``Client._run_event`` against ours, the
Python one and the compiled one (``_gateway_speedups.ListenerRunner``), scenario by
scenario -- the same return value, the same exceptions to ``on_error`` (and the same
``sys.exc_info()`` inside it), the same cancellations -- and each run in the
``discord.listener.duration`` histogram. (test_metrics.py and test_sampling.py run
them through a real bot.)"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import traceback
import types
from collections.abc import Callable, Generator, Iterator
from typing import Any

import discord
import pytest
from opentelemetry import context as otel_context
from opentelemetry.trace import NoOpTracerProvider, StatusCode
from tests.instrumentation.conftest import Telemetry, finished_task, reinstrument

from discord_otel.instrumentation import spans

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
    yield installed_run_event(telemetry, NoOpTracerProvider(), original, gateway_parser)
    telemetry.uninstrument()


def installed_run_event(
    telemetry: Telemetry,
    provider: Any,
    original: Callable[..., Any],
    gateway_parser: str,
) -> Any:
    """The ``_run_event`` the instrumentation installs, tracing into ``provider``:
    the compiled runner or the Python one, as ``gateway_parser`` asks."""
    reinstrument(telemetry, provider)
    installed = vars(discord.Client)["_run_event"]
    assert installed is not original
    compiled = type(installed).__module__ == "discord_otel._gateway_speedups"
    assert compiled == (gateway_parser == "compiled")
    return installed


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
    with gateway_context():
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


@contextlib.contextmanager
def gateway_context() -> Iterator[None]:
    """The OpenTelemetry context discord.py dispatches in: the proxy span's, which
    the instrumented ``Client.connect`` attaches for the whole connection."""
    token = otel_context.attach(spans.PROXY_CONTEXT)
    try:
        yield
    finally:
        otel_context.detach(token)


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


# --- traced runs: the compiled runner makes and ends the span itself ----------------


@pytest.fixture
def traced(
    telemetry: Telemetry, original: Callable[..., Any], gateway_parser: str
) -> Iterator[Any]:
    """Our ``_run_event`` while tracing: the compiled runner (its own spans) or the
    Python one."""
    yield installed_run_event(telemetry, telemetry.tracer_provider, original, gateway_parser)
    telemetry.uninstrument()


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_traced_run_behaves_as_discord_pys(
    scenario: str, traced: Any, original: Callable[..., Any]
) -> None:
    expected = await outcome(original, **SCENARIOS[scenario])
    assert await outcome(traced, **SCENARIOS[scenario]) == expected


# what each scenario leaves exported: a run that only computes leaves no span; a
# failed one is exported with the error (whether or not on_error then fails)
EXPORTED = {
    "succeeds": None,
    "fails": "KeyError",
    "fails before its first await": "KeyError",
    "is cancelled from inside": None,
    "raises a BaseException": None,
    "is not a coroutine": "TypeError",
    "fails, and so does on_error": "KeyError",
    "fails, and on_error is cancelled": "KeyError",
    "is cancelled while it waits": None,
    "is cancelled before it starts": None,
    "is a generator-based coroutine": "KeyError",
}


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_a_traced_run_exports_its_span_only_when_it_failed(
    scenario: str, telemetry: Telemetry, traced: Any
) -> None:
    await outcome(traced, **SCENARIOS[scenario])
    spans = telemetry.named(f"listener {EVENT}")
    if EXPORTED[scenario] is None:
        assert spans == []
        return
    (span,) = spans
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == EXPORTED[scenario]
    assert span.attributes["discord.listener.name"] == EVENT
    assert span.start_time is not None
    assert span.end_time is not None
    assert span.start_time <= span.end_time


async def test_a_traced_run_is_the_parent_of_spans_made_inside_it(
    telemetry: Telemetry, traced: Any, gateway_parser: str
) -> None:
    """The listener span is current while it runs (a user's span nests under it),
    and the task's current span is as before once it ends."""
    tracer = telemetry.tracer_provider.get_tracer("the bot's own")
    seen: dict[str, Any] = {}

    async def makes_a_span(x: int, *, y: int) -> None:
        seen["inside"] = spans.current()
        with tracer.start_as_current_span("own work"):
            await asyncio.sleep(0)
        seen["still"] = spans.current()

    async def schedules() -> None:
        run = bound(traced)._run_event(makes_a_span, EVENT, 1, y=2)  # type: ignore[attr-defined]
        seen["run"] = type(run).__name__
        await run
        seen["after"] = spans.current()

    with gateway_context():
        await schedules()
    # the compiled runner runs it itself, span and all
    assert seen["run"] == ("ListenerRun" if gateway_parser == "compiled" else "coroutine")
    assert seen["inside"] is not None
    assert seen["inside"] is seen["still"]
    assert seen["after"] is None
    own = telemetry.one("own work")
    listener = telemetry.one(f"listener {EVENT}")
    assert telemetry.parent(own).context.span_id == listener.context.span_id
    assert listener.status.status_code is StatusCode.UNSET
    assert listener.start_time <= own.start_time <= own.end_time <= listener.end_time  # type: ignore[operator]


async def test_a_traced_run_nests_under_the_span_it_was_scheduled_in(
    telemetry: Telemetry, traced: Any
) -> None:
    """The run's parent is the Discord span current where discord.py scheduled it
    (the event's), which the task's context copies."""
    parent = spans.DiscordSpan(
        telemetry.tracer_provider.get_tracer("test"), "gateway THING", {}, time.time_ns()
    )
    token = spans.CURRENT.set(parent)
    try:
        await outcome(traced, fails)
    finally:
        spans.CURRENT.reset(token)
    parent.finish()
    listener = telemetry.one(f"listener {EVENT}")
    assert telemetry.parent(listener).name == "gateway THING"


async def test_a_traced_run_scheduled_under_a_span_of_the_bots_own_nests_under_it(
    telemetry: Telemetry, traced: Any
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("the bot's own")
    with tracer.start_as_current_span("own dispatch"):  # the proxy is not current
        coroutine = bound(traced)._run_event(fails, EVENT, 1, y=2)  # type: ignore[attr-defined]
        await finished_task(coroutine)
    listener = telemetry.one(f"listener {EVENT}")
    assert telemetry.parent(listener).name == "own dispatch"
    assert listener.status.status_code is StatusCode.ERROR
