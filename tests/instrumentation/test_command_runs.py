"""Commands: the Python hooks (``commands._invoke``, ``app_commands._call``) against
the compiled one (``_gateway_speedups.CommandHook``), through a real bot against the
simulator -- every kind of command, succeeding and failing, each in
``discord.command.duration`` under the same name, type, outcome and error type,
``discord.command.active`` back to zero and nothing left behind; while nothing is
traced (metrics only, or under events whose traces the sampler dropped) no span,
and traced the same spans."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from discord import app_commands
from discord.ext import commands
from opentelemetry.trace import NoOpTracerProvider
from tests.instrumentation.conftest import (
    Telemetry,
    every_event_dropped,
    reinstrument,
    running_bot,
)

from discord_otel import set_discord_context
from discord_otel.instrumentation import handlers

# (name, type, outcome, error type) -> runs
EXPECTED = {
    ("ping", "prefix", "success", None): 2,
    ("settings show", "prefix", "success", None): 1,  # a group's subcommand, named as it ends
    ("echo", "hybrid", "success", None): 2,  # as a prefix command and as a slash command
    ("crash", "prefix", "error", "ValueError"): 1,
    ("forbidden", "prefix", "error", "CheckFailure"): 1,
    ("(unknown)", "prefix", "error", "CommandNotFound"): 1,
    ("config set", "slash", "success", None): 1,
    ("config deny", "slash", "error", "MissingPermissions"): 1,
    ("whoami", "prefix", "success", None): 1,
    ("Inspect", "user", "success", None): 1,
    ("Quote", "message", "success", None): 1,
    # cancelled while it waited: discord.py marks it failed, with no exception to name
    ("slow", "prefix", "error", "_OTHER"): 1,
}


@pytest.fixture(params=["metrics only", "every event dropped"])
def implementation(
    request: pytest.FixtureRequest, telemetry: Telemetry, gateway_parser: str
) -> Iterator[str]:
    """Metrics only (no tracer) or every trace dropped as it begins, with the Python
    or the compiled hooks."""
    dropped = request.param == "every event dropped"
    reinstrument(telemetry, every_event_dropped(telemetry) if dropped else NoOpTracerProvider())
    for owner, name in ((commands.bot.BotBase, "invoke"), (app_commands.CommandTree, "_call")):
        installed = vars(owner)[name]
        assert (type(installed).__name__ == "CommandHook") == (gateway_parser == "compiled")
    yield str(request.param)
    telemetry.uninstrument()


def runs(telemetry: Telemetry) -> Counter[tuple[str, str, str, str | None]]:
    metric = telemetry.metrics().get("discord.command.duration")
    found: Counter[tuple[str, str, str, str | None]] = Counter()
    for point in [] if metric is None else metric.data.data_points:
        a = point.attributes
        key = (
            a["discord.command.name"],
            a["discord.command.type"],
            a["discord.command.outcome"],
            a.get("error.type"),
        )
        found[key] += point.count
    return found


async def invoke_every_kind(sim: Any) -> None:
    """Every kind of command, succeeding and failing (all of EXPECTED but ``slow``;
    ``whoami`` is the test's own)."""
    await sim.send_message("!ping")
    await sim.send_message("!ping")
    await sim.send_message("!settings show")
    await sim.send_message("!echo hi")
    await sim.slash("echo", {"text": "hi"})
    await sim.send_message("!crash", wait=False)
    await sim.send_message("!forbidden", wait=False)
    await sim.send_message("!no-such-command", wait=False)
    await sim.slash("config set", {"key": "a", "value": "b"})
    await sim.slash("config deny", {})
    await sim.send_message("!whoami")
    await sim.user_command("Inspect")
    await sim.message_command("Quote")
    await sim.autocomplete("echo", "text", "h")  # untraced: the Python hook's either way


async def test_every_kind_of_command(telemetry: Telemetry, implementation: str) -> None:
    contexts: list[dict[str, Any]] = []
    started = asyncio.Event()
    async with running_bot() as harness:
        bot, sim = harness.bot, harness.sim

        @bot.command()
        async def whoami(ctx: Any) -> None:
            contexts.append(set_discord_context())
            await ctx.send("you")

        @bot.command()
        async def slow(ctx: Any) -> None:
            started.set()
            await asyncio.sleep(3600)

        await invoke_every_kind(sim)
        await sim.send_message("!slow", wait=False)
        await asyncio.wait_for(started.wait(), 10)
        (slow_task,) = handlers._untraced  # the one command still running
        slow_task.cancel()
        await telemetry.settle(lambda: runs(telemetry).total() >= sum(EXPECTED.values()))
        metrics = telemetry.metrics()
    assert runs(telemetry) == EXPECTED
    # set_discord_context() inside an untraced command names it; under a dropped
    # event, the event's guild and channel come with it
    (context,) = contexts
    assert context["discord.command.name"] == "whoami"
    assert ("discord.channel.id" in context) == (implementation == "every event dropped")
    active = metrics["discord.command.active"].data.data_points
    assert {dict(p.attributes)["discord.command.type"]: p.value for p in active} == {
        "prefix": 0,
        "hybrid": 0,
        "slash": 0,
        "user": 0,
        "message": 0,
    }
    assert handlers._untraced == {}  # nothing kept once the commands are over
    assert telemetry.spans() == []


async def test_every_kind_of_command_traced(telemetry: Telemetry, gateway_parser: str) -> None:
    """Traced, the compiled hook awaits every command too (the Python hook's halves
    begin and end its span): the same metrics and the same spans as the Python hook."""
    reinstrument(telemetry, telemetry.tracer_provider)  # the hooks of ``gateway_parser``
    for owner, name in ((commands.bot.BotBase, "invoke"), (app_commands.CommandTree, "_call")):
        installed = vars(owner)[name]
        assert (type(installed).__name__ == "CommandHook") == (gateway_parser == "compiled")
    async with running_bot() as harness:

        @harness.bot.command()
        async def whoami(ctx: Any) -> None:
            await ctx.send("you")

        await invoke_every_kind(harness.sim)
        expected = Counter(EXPECTED) - Counter({("slow", "prefix", "error", "_OTHER"): 1})
        await telemetry.settle(lambda: runs(telemetry).total() >= expected.total())
        metrics = telemetry.metrics()
    assert runs(telemetry) == expected
    active = metrics["discord.command.active"].data.data_points
    assert {p.value for p in active} == {0}
    spans = Counter(
        (
            span.name,
            (span.attributes or {}).get("discord.command.outcome"),
            (span.attributes or {}).get("error.type"),
            span.status.status_code.name,
        )
        for span in telemetry.spans()
        if span.name.startswith(("command ", "autocomplete "))
    )
    assert spans == Counter(
        {
            ("command ping", "success", None, "UNSET"): 2,
            ("command settings show", "success", None, "UNSET"): 1,
            ("command echo", "success", None, "UNSET"): 2,
            ("command crash", "error", "ValueError", "ERROR"): 1,
            ("command forbidden", "error", "CheckFailure", "ERROR"): 1,
            ("command (unknown)", "error", "CommandNotFound", "ERROR"): 1,
            ("command config set", "success", None, "UNSET"): 1,
            ("command config deny", "error", "MissingPermissions", "ERROR"): 1,
            ("command whoami", "success", None, "UNSET"): 1,
            ("command Inspect", "success", None, "UNSET"): 1,
            ("command Quote", "success", None, "UNSET"): 1,
            ("autocomplete echo", None, None, "UNSET"): 1,
        }
    )
    assert handlers._untraced == {}
