"""Start-up, tasks, reconnects, uninstrument, late instrumentation, unchanged behaviour."""

from __future__ import annotations

import asyncio
import logging

import discord
import discord.http
import discord.webhook.async_
from discord import app_commands, ui
from discord.app_commands import CommandTree
from discord.ext import commands, tasks
from discord.gateway import DiscordWebSocket
from discord.state import ConnectionState
from opentelemetry.trace import SpanKind
from tests.instrumentation.conftest import Harness, Telemetry, running_bot

from discord_otel.instrumentation import DiscordInstrumentor, clients

PATCHED = [
    (ConnectionState, "_update_references"),
    (DiscordWebSocket, "from_client"),
    (discord.Client, "connect"),
    (discord.AutoShardedClient, "connect"),
    (discord.Client, "login"),
    (discord.Client, "_run_event"),
    (commands.bot.BotBase, "invoke"),
    (commands.bot.BotBase, "load_extension"),
    (commands.bot.BotBase, "add_cog"),
    (commands.Command, "dispatch_error"),
    (CommandTree, "_call"),
    (app_commands.Command, "_invoke_error_handlers"),
    (app_commands.ContextMenu, "_invoke"),
    (ui.view.BaseView, "_scheduled_task"),
    (ui.Modal, "_scheduled_task"),
    (ui.view.ViewStore, "schedule_dynamic_item_call"),
    (discord.http.HTTPClient, "request"),
    (discord.webhook.async_.AsyncWebhookAdapter, "request"),
    (discord.http, "json_or_text"),
    (discord.webhook.async_, "json_or_text"),
    (tasks.Loop, "start"),
]


def _raw(owner: object, name: str) -> object:
    return vars(owner).get(name, "<absent>")


def test_uninstrument_restores_every_original(telemetry: Telemetry) -> None:
    telemetry.uninstrument()
    before = {(owner, name): _raw(owner, name) for owner, name in PATCHED}
    telemetry.instrument()
    changed = [(o, n) for o, n in PATCHED if _raw(o, n) is not before[(o, n)]]
    assert changed == PATCHED  # every one of them is hooked ...
    telemetry.uninstrument()
    for owner, name in PATCHED:  # ... and the very same objects come back
        assert _raw(owner, name) is before[(owner, name)], (owner, name)


def test_dependencies() -> None:
    assert DiscordInstrumentor().instrumentation_dependencies() == ("discord.py >= 2.0, < 3",)


async def test_startup_trace(telemetry: Telemetry, harness: Harness) -> None:
    await telemetry.settle(lambda: telemetry.named("startup"))
    startup = telemetry.one("startup")
    assert startup.parent is None
    cog = telemetry.one("add_cog Tools")
    assert telemetry.parent(cog).name == "startup"
    connect = telemetry.one("gateway connect")
    assert telemetry.parent(connect).name == "startup"
    assert connect.end_time <= startup.end_time


async def test_task_iterations_are_linked_traces(telemetry: Telemetry, harness: Harness) -> None:
    heartbeat = harness.bot.heartbeat  # type: ignore[attr-defined]
    await telemetry.settle(lambda: len(telemetry.named("task heartbeat")) == 2)
    assert asyncio.iscoroutinefunction(heartbeat.coro)
    assert heartbeat.coro.__name__ == "heartbeat"
    runs = telemetry.named("task heartbeat")
    assert harness.behaviour.task_runs == 2
    for run in runs:
        assert run.parent is None
        assert run.kind is SpanKind.INTERNAL
        assert run.attributes["discord.task.name"] == "heartbeat"
        assert len(run.links) == 1
    assert runs[0].context.trace_id != runs[1].context.trace_id
    started_in = [
        s
        for s in telemetry.named("listener on_ready")
        if s.context.span_id == runs[0].links[0].context.span_id
    ]
    assert started_in


async def test_reconnect_counted(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.force_reconnect(shard=0, kind="resume")
    metrics = telemetry.metrics()
    points = list(metrics["discord.gateway.reconnects"].data.data_points)
    kinds = {p.attributes["discord.gateway.reconnect.kind"] for p in points}
    assert "resume" in kinds


async def test_instrumenting_after_the_client_was_built(telemetry: Telemetry) -> None:
    telemetry.uninstrument()
    from tests.instrumentation.conftest import Behaviour, make_bot

    behaviour = Behaviour()
    bot = make_bot(behaviour)
    telemetry.instrument()
    from discord_otel.simulator import Simulator

    async with Simulator() as sim:
        with sim.redirect():
            task = asyncio.create_task(bot.start(sim.token))
            try:
                await sim.wait_ready(timeout=15, commands=True)
                await sim.send_message("!ping")
                await telemetry.settle(lambda: telemetry.named("command ping"))
                assert (
                    telemetry.chain(telemetry.one("command ping"))[-1] == "gateway MESSAGE_CREATE"
                )
            finally:
                await bot.close()
                await asyncio.wait_for(task, 10)


async def _scenario(harness: Harness) -> list[tuple[str, str]]:
    sim = harness.sim
    seen: list[tuple[str, str]] = []
    for step in (
        sim.send_message("!ping"),
        sim.send_message("!crash", wait=False),
        sim.slash("config set", options={"key": "k", "value": "v"}),
        sim.slash("config deny"),
        sim.send_message("!buttons"),
    ):
        calls = await step
        seen += [(c.method, c.route) for c in calls]
    seen += [(c.method, c.route) for c in await sim.click("explode")]
    await asyncio.sleep(0.3)
    return seen


async def test_behaviour_is_the_same_with_and_without(telemetry: Telemetry) -> None:
    results = []
    for instrumented in (True, False):
        if not instrumented:
            telemetry.uninstrument()
        async with running_bot() as harness:
            calls = await _scenario(harness)
            b = harness.behaviour
            results.append(
                (sorted(calls), b.command_errors, b.app_errors, b.view_errors, b.listener_errors)
            )
    assert results[0] == results[1]
    assert results[0][1] == ["CommandInvokeError"]
    assert results[0][3] == ["RuntimeError"]


async def test_internal_failure_is_swallowed_and_logged_once(
    telemetry: Telemetry,
    harness: Harness,
    caplog,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from discord_otel.instrumentation import safety, spans

    safety.reset()

    def broken(self: object) -> None:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(spans.DiscordSpan, "finish", broken)
    with caplog.at_level(logging.WARNING, logger="discord_otel.instrumentation"):
        await harness.sim.send_message("!ping")
        await harness.sim.send_message("!ping")
        await asyncio.sleep(0.1)
    reports = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert reports
    assert len({r.getMessage() for r in reports}) == len(reports)  # once per site


def test_start_callback_runs_once_per_client() -> None:
    seen: list[discord.Client] = []
    clients.add_start_callback(seen.append)
    try:
        client = discord.Client(intents=discord.Intents.none())
        clients.track(client)
        clients.track(client)
        assert seen == [client]
    finally:
        clients.remove_start_callback(seen.append)
        clients.forget_all()
