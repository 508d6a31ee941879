"""Listener scheduling: discord.py's ``Client._schedule_event`` against the compiled
one (``_gateway_speedups.ListenerScheduler``), call by call -- the same
``_run_event`` call (the client's own, looked up per call), the same
``loop.create_task`` call and task name, the same result and the same exceptions --
and through a real bot against the simulator, with the Python and the compiled
halves."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import discord
import pytest
from opentelemetry.trace import NoOpTracerProvider
from tests.instrumentation.conftest import Telemetry, reinstrument, running_bot

from discord_otel.instrumentation import gateway


class Loop:
    """What ``_schedule_event`` needs of a loop, recording each ``create_task``."""

    def __init__(self, raises: Exception | None = None) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []
        self.raises = raises

    def create_task(self, coro: Any, **kwargs: Any) -> Any:
        self.calls.append((coro, kwargs))
        if self.raises is not None:
            raise self.raises
        return ("task", coro)


class Client:
    """What ``_schedule_event`` needs of a client, recording each ``_run_event``."""

    run_event_raises: Exception | None = None

    def __init__(self) -> None:
        self.loop: Any = Loop()
        self.runs: list[tuple[Any, ...]] = []

    def _run_event(self, coro: Any, event_name: Any, *args: Any, **kwargs: Any) -> Any:
        self.runs.append(("class", coro, event_name, args, kwargs))
        if self.run_event_raises is not None:
            raise self.run_event_raises
        return ("wrapped", event_name)


class FormattedName(str):
    def __format__(self, spec: str) -> str:
        return "formatted"


class Unformattable:
    def __format__(self, spec: str) -> str:
        raise ValueError("no format")


async def listener() -> None:
    return None


def instance_run_event(client: Client) -> None:
    def run_event(coro: Any, event_name: Any, *args: Any, **kwargs: Any) -> Any:
        client.runs.append(("instance", coro, event_name, args, kwargs))
        return "instance's"

    client._run_event = run_event  # type: ignore[method-assign]


def no_loop(client: Client) -> None:
    del client.loop


def loop_without_create_task(client: Client) -> None:
    client.loop = object()


def failing_create_task(client: Client) -> None:
    client.loop = Loop(RuntimeError("loop closed"))


def failing_run_event(client: Client) -> None:
    client.run_event_raises = TypeError("bad listener")


# (call arguments after the client, keyword arguments, a change to the client)
SCENARIOS: dict[str, tuple[tuple[Any, ...], dict[str, Any], Callable[[Client], None] | None]] = {
    "as dispatch calls it": ((listener, "on_thing", 1, "two"), {"y": 3}, None),
    "no event arguments": ((listener, "on_thing"), {}, None),
    "a str subclass as the name": ((listener, FormattedName("on_thing"), 1), {}, None),
    "not a str as the name": ((listener, 42), {}, None),
    "a name that cannot be formatted": ((listener, Unformattable()), {}, None),
    "_run_event set on the instance": ((listener, "on_thing", 1), {"y": 2}, instance_run_event),
    "_run_event raises": ((listener, "on_thing"), {}, failing_run_event),
    "no loop": ((listener, "on_thing"), {}, no_loop),
    "a loop without create_task": ((listener, "on_thing"), {}, loop_without_create_task),
    "create_task raises": ((listener, "on_thing"), {}, failing_create_task),
    "too few arguments": ((listener,), {}, None),
    "by keyword": ((), {"coro": listener, "event_name": "on_thing"}, None),
}


def outcome(
    schedule: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    change: Callable[[Client], None] | None,
) -> dict[str, Any]:
    """What a caller of ``client._schedule_event(*args, **kwargs)`` could observe."""
    client: Client = type("Bot", (Client,), {"_schedule_event": schedule})()
    if change is not None:
        change(client)
    try:
        result: Any = client._schedule_event(*args, **kwargs)  # type: ignore[attr-defined]
    except Exception as exc:
        result = ("raised", type(exc), str(exc).replace(type(schedule).__name__, "?"))
    loop = getattr(client, "loop", None)
    return {
        "result": result,
        "runs": client.runs,
        "tasks": loop.calls if isinstance(loop, Loop) else None,
    }


@pytest.fixture
def original(telemetry: Telemetry) -> Any:
    telemetry.uninstrument()
    return vars(discord.Client)["_schedule_event"]


@pytest.fixture
def compiled(original: Any) -> Any:
    if gateway.speedups is None:
        pytest.skip("discord_otel._gateway_speedups is not built here")
    return gateway.speedups.ListenerScheduler(original)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_schedule_behaves_as_discord_pys(original: Any, compiled: Any, scenario: str) -> None:
    args, kwargs, change = SCENARIOS[scenario]
    expected = outcome(original, args, kwargs, change)
    assert outcome(compiled, args, kwargs, change) == expected


def test_what_discord_pys_schedule_does(original: Any) -> None:
    # the reference the scenarios compare against, spelled out once
    args, kwargs, _ = SCENARIOS["as dispatch calls it"]
    seen = outcome(original, args, kwargs, None)
    assert seen["runs"] == [("class", listener, "on_thing", (1, "two"), {"y": 3})]
    assert seen["tasks"] == [(("wrapped", "on_thing"), {"name": "discord.py: on_thing"})]
    assert seen["result"] == ("task", ("wrapped", "on_thing"))
    assert outcome(original, *SCENARIOS["a str subclass as the name"][:2], None)["tasks"] == [
        (("wrapped", "on_thing"), {"name": "discord.py: formatted"})
    ]
    assert outcome(original, *SCENARIOS["no loop"][:2], no_loop)["result"][1] is AttributeError


def listener_runs(telemetry: Telemetry) -> dict[str | None, int]:
    """Runs of ``on_message`` listeners in ``discord.listener.duration``, by error type."""
    metric = telemetry.metrics().get("discord.listener.duration")
    found: dict[str | None, int] = {}
    for point in [] if metric is None else metric.data.data_points:
        if point.attributes["discord.listener.name"] == "on_message":
            error = point.attributes.get("error.type")
            found[error] = found.get(error, 0) + point.count
    return found


async def test_a_real_bot_schedules_its_listeners(
    telemetry: Telemetry, original: Any, gateway_parser: str
) -> None:
    reinstrument(telemetry, NoOpTracerProvider())
    installed = vars(discord.Client)["_schedule_event"]
    assert (type(installed).__name__ == "ListenerScheduler") == (gateway_parser == "compiled")
    assert (installed is original) == (gateway_parser == "python")
    names: list[str] = []
    failures: list[str] = []
    async with running_bot() as harness:
        bot = harness.bot

        @bot.listen("on_message")
        async def named(message: discord.Message) -> None:
            task = asyncio.current_task()
            assert task is not None
            names.append(task.get_name())
            if message.content == "fail":
                raise ValueError("listener failed")

        async def on_error(event_name: str, *args: Any, **kwargs: Any) -> None:
            failures.append(event_name)

        bot.on_error = on_error  # type: ignore[method-assign]
        await harness.sim.send_message("hello", wait=False)
        await harness.sim.send_message("fail", wait=False)
        # each message: the Bot's own on_message (commands) and every listener added
        per_message = 1 + len(bot.extra_events["on_message"])
        expected = {None: 2 * per_message - 1, "ValueError": 1}
        await telemetry.settle(lambda: listener_runs(telemetry) == expected, timeout=10)
    assert names == ["discord.py: on_message"] * 2
    assert failures == ["on_message"]
    telemetry.uninstrument()
    assert vars(discord.Client)["_schedule_event"] is original
