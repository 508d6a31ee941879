"""discord.* metrics of a real bot: instruments, units, attributes, exemplars, cardinality."""

from __future__ import annotations

import asyncio
from typing import Any

import discord
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NoOpTracerProvider
from tests.instrumentation.conftest import Harness, Telemetry, reinstrument, running_bot

from discord_otel.config import DiscordOtelSettings
from discord_otel.context import set_discord_context
from discord_otel.instrumentation import handlers, listeners
from discord_otel.instrumentation.metrics import Instruments

UNITS = {
    "discord.gateway.events": "{event}",
    "discord.gateway.latency": "s",
    "discord.shard.connected": "1",
    "discord.gateway.reconnects": "{reconnect}",
    "discord.listener.duration": "s",
    "discord.command.duration": "s",
    "discord.command.active": "{command}",
    "discord.component.duration": "s",
    "discord.interaction.ack.duration": "s",
    "discord.rest.request.duration": "s",
    "discord.rest.ratelimits": "{response}",
    "discord.rest.ratelimit.remaining": "{request}",
    "discord.task.duration": "s",
    "discord.task.last_success": "s",
    "discord.guilds": "{guild}",
    "discord.users": "{user}",
    "asyncio.event_loop.lag": "s",
}


def points(metric: Any) -> list[Any]:
    return list(metric.data.data_points)


def attrs(metric: Any) -> list[dict[str, Any]]:
    return [dict(p.attributes) for p in points(metric)]


async def test_every_instrument(telemetry: Telemetry, harness: Harness) -> None:
    sim = harness.sim
    sim.faults.add_ratelimit(
        route="POST /channels/{channel_id}/messages", scope="bucket", retry_after=0.05, times=1
    )
    await sim.send_message("!ping")
    await sim.send_message("!no-such-command", wait=False)
    await sim.slash("config set", options={"key": "k", "value": "v"})
    await sim.send_message("!buttons")
    await sim.click("confirm")
    await sim.force_reconnect(shard=0, kind="resume")
    await telemetry.settle(lambda: harness.behaviour.task_runs == 2)
    await asyncio.sleep(1.1)  # one event loop lag probe (default interval 1 s)
    metrics = telemetry.metrics()
    assert set(UNITS) <= set(metrics), sorted(set(UNITS) - set(metrics))
    for name, unit in UNITS.items():
        assert metrics[name].unit == unit, name

    events = {
        (p.attributes["discord.gateway.event"], p.attributes["discord.shard.id"]): p.value
        for p in points(metrics["discord.gateway.events"])
    }
    assert events[("MESSAGE_CREATE", 0)] >= 3
    assert events[("INTERACTION_CREATE", 0)] >= 2
    assert {"discord.shard.id": 0} in attrs(metrics["discord.gateway.latency"])
    assert [p.value for p in points(metrics["discord.shard.connected"])] == [1]
    assert points(metrics["discord.guilds"])[0].value == 1
    assert points(metrics["discord.users"])[0].value >= 1

    listener = attrs(metrics["discord.listener.duration"])
    assert {"discord.listener.name": "on_message"} in listener
    command = attrs(metrics["discord.command.duration"])
    assert {
        "discord.command.name": "ping",
        "discord.command.type": "prefix",
        "discord.command.outcome": "success",
    } in command
    assert {
        "discord.command.name": "(unknown)",
        "discord.command.type": "prefix",
        "discord.command.outcome": "error",
        "error.type": "CommandNotFound",
    } in command
    assert {
        "discord.command.name": "config set",
        "discord.command.type": "slash",
        "discord.command.outcome": "success",
    } in command
    assert {p.value for p in points(metrics["discord.command.active"])} == {0}
    assert {
        "discord.component.name": "Confirm.confirm",
        "discord.component.type": "button",
    } in attrs(metrics["discord.component.duration"])
    ack = attrs(metrics["discord.interaction.ack.duration"])
    assert {"discord.interaction.type": "application_command"} in ack
    assert {"discord.interaction.type": "component"} in ack
    ack_point = points(metrics["discord.interaction.ack.duration"])[0]
    assert 3.0 in ack_point.explicit_bounds
    rest = attrs(metrics["discord.rest.request.duration"])
    assert {
        "http.request.method": "POST",
        "url.template": "/channels/{channel_id}/messages",
        "http.response.status_code": 200,
    } in rest
    assert {
        "url.template": "/channels/{channel_id}/messages",
        "discord.ratelimit.scope": "bucket",
    } in attrs(metrics["discord.rest.ratelimits"])
    assert {"url.template": "/channels/{channel_id}/messages"} in attrs(
        metrics["discord.rest.ratelimit.remaining"]
    )
    assert {"discord.task.name": "heartbeat"} in attrs(metrics["discord.task.duration"])
    assert {"discord.task.name": "heartbeat"} in attrs(metrics["discord.task.last_success"])
    assert points(metrics["asyncio.event_loop.lag"])[0].value >= 0
    reconnects = attrs(metrics["discord.gateway.reconnects"])
    assert {"discord.shard.id": 0, "discord.gateway.reconnect.kind": "resume"} in reconnects
    # IDs are never metric attributes
    for metric in metrics.values():
        for point_attrs in attrs(metric):
            assert not {"discord.guild.id", "discord.channel.id", "discord.user.id"} & set(
                point_attrs
            )


async def test_histogram_counts_are_exact(telemetry: Telemetry, harness: Harness) -> None:
    for _ in range(5):
        await harness.sim.send_message("!ping")
    metrics = telemetry.metrics()
    ping = [
        p
        for p in points(metrics["discord.command.duration"])
        if p.attributes.get("discord.command.name") == "ping"
    ]
    assert [p.count for p in ping] == [5]
    assert sum(ping[0].bucket_counts) == 5
    assert ping[0].sum > 0
    assert list(ping[0].explicit_bounds)[-1] == 30.0


async def test_exemplars_point_at_exported_traces(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!ping")
    await harness.sim.slash("config set", options={"key": "k", "value": "v"})
    await telemetry.settle(lambda: telemetry.named("command config set"))
    trace_ids = {s.context.trace_id for s in telemetry.spans()}
    metrics = telemetry.metrics()
    found = 0
    for name in ("discord.command.duration", "discord.rest.request.duration"):
        for point in points(metrics[name]):
            for exemplar in point.exemplars:
                assert exemplar.trace_id in trace_ids
                found += 1
    assert found >= 2


class _CountingInstrument:
    """The SDK histogram, counting the observations sent through its ``record``."""

    def __init__(self, real: Any) -> None:
        self._real_instrument = real  # what FastHistogram.flush merges into
        self.calls = 0

    def record(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        self._real_instrument.record(*args, **kwargs)


def test_one_exemplar_per_bucket_per_collection() -> None:
    """Many sampled observations in one bucket: exact aggregates, an exemplar, and
    only the first of each collection interval takes the SDK's costly path."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    instruments = Instruments(provider.get_meter("test"), event_loop_lag_interval=1.0)
    histogram = instruments.command_duration
    counting = _CountingInstrument(histogram.instrument)
    histogram.instrument = counting  # type: ignore[assignment]
    series = histogram.series("ping", {"discord.command.name": "ping"})
    tracer = TracerProvider().get_tracer("test")

    def collect() -> Any:
        data = reader.get_metrics_data()
        assert data is not None
        for scope in data.resource_metrics[0].scope_metrics:
            for metric in scope.metrics:
                if metric.name == "discord.command.duration":
                    (point,) = metric.data.data_points
                    return point
        raise AssertionError("no discord.command.duration")

    try:
        values = [0.0051 + i * 0.000004 for i in range(1000)]  # all in (0.005, 0.01]
        with tracer.start_as_current_span("first") as first:
            for value in values:
                histogram.record(series, value, first)
        assert counting.calls == 1
        point = collect()
        assert point.count == 1000
        assert list(point.bucket_counts)[1] == 1000
        assert point.sum == pytest.approx(sum(values))
        assert (point.min, point.max) == (values[0], values[-1])
        first_trace = first.get_span_context().trace_id
        assert [e.trace_id for e in point.exemplars] == [first_trace]

        # after the collection the bucket takes a new exemplar (cumulative points)
        with tracer.start_as_current_span("second") as second:
            for _ in range(500):
                histogram.record(series, 0.006, second)
                histogram.record(series, 0.006)
        assert counting.calls == 2
        point = collect()
        assert point.count == 2000
        assert point.sum == pytest.approx(sum(values) + 1000 * 0.006)
        assert [e.trace_id for e in point.exemplars] == [second.get_span_context().trace_id]

        # an interval with nothing in process to merge still clears the marks
        with tracer.start_as_current_span("third") as third:
            histogram.record(series, 0.007, third)
        assert counting.calls == 3
        assert collect().count == 2001
        with tracer.start_as_current_span("fourth") as fourth:
            histogram.record(series, 0.007, fourth)
            histogram.record(series, 0.3, fourth)  # another bucket: its own exemplar
            histogram.record(series, 0.3, fourth)
        assert counting.calls == 5
        point = collect()
        assert point.count == 2004
        assert point.max == 0.3
        assert len(point.exemplars) == 2
        assert {e.trace_id for e in point.exemplars} == {fourth.get_span_context().trace_id}
    finally:
        instruments.stop()
        provider.shutdown()


async def test_cardinality_is_bounded(telemetry: Telemetry, harness: Harness) -> None:
    for index in range(10_000):
        await harness.sim.send_message(f"!unknown{index}", wait=False)
        if index % 500 == 499:
            await asyncio.sleep(0)
    await telemetry.settle(
        lambda: (
            sum(
                p.value
                for p in points(telemetry.metrics()["discord.gateway.events"])
                if p.attributes["discord.gateway.event"] == "MESSAGE_CREATE"
            )
            >= 10_000
        ),
        timeout=60,
    )
    await asyncio.sleep(0.5)
    metrics = telemetry.metrics()
    total_series = sum(len(points(m)) for m in metrics.values())
    assert total_series < 60
    unknown = [
        p
        for p in points(metrics["discord.command.duration"])
        if p.attributes["discord.command.name"] == "(unknown)"
    ]
    assert len(unknown) == 1
    assert unknown[0].count == 10_000
    assert len(telemetry.named("command (unknown)")) == 10_000
    assert not any("unknown1" in s.name for s in telemetry.spans())


async def test_custom_ids_do_not_become_series(telemetry: Telemetry, harness: Harness) -> None:
    """10,000 distinct custom_ids (a dynamic item's, which encode data) -> one series."""
    import copy

    from discord_otel.simulator.server import COMPONENT

    sim = harness.sim
    await sim.send_message("!counter")
    original = sim.state.latest_message_with_component("counter:1")
    assert original is not None
    clicks = 10_000
    for index in range(clicks):
        custom_id = f"counter:{index}"
        message = copy.deepcopy(original)
        message["components"][0]["components"][0]["custom_id"] = custom_id
        pending = sim.state.new_interaction(COMPONENT, sim.guild(), custom_id)
        pending.channel_id = int(message["channel_id"])
        pending.source_message_id = int(message["id"])
        # no public "click without waiting for the reaction" in the simulator
        await sim._interact(
            pending,
            {"custom_id": custom_id, "component_type": 2},
            what="click",
            message=message,
            timeout=10,
            wait=False,
        )
        if index % 200 == 199:
            await asyncio.sleep(0.05)

    def done() -> bool:
        metric = telemetry.metrics().get("discord.component.duration")
        return metric is not None and sum(p.count for p in points(metric)) >= clicks

    await telemetry.settle(done, timeout=90)
    metrics = telemetry.metrics()
    component = points(metrics["discord.component.duration"])
    assert {p.attributes["discord.component.name"] for p in component} == {
        "counter:(?P<count>[0-9]+)"
    }
    assert len(component) == 1
    assert sum(len(points(m)) for m in metrics.values()) < 60


async def test_privacy_opt_ins(telemetry: Telemetry) -> None:
    telemetry.uninstrument()
    telemetry.instrument(
        DiscordOtelSettings(
            capture_user_id=True, capture_message_content=True, capture_command_options=True
        )
    )
    async with running_bot() as harness:
        await harness.sim.send_message("!ping")
        await harness.sim.slash("config set", options={"key": "colour", "value": "red"})
        await telemetry.settle(lambda: telemetry.named("command config set"))
    ping = telemetry.one("command ping")
    assert ping.attributes["discord.message.content"] == "!ping"
    assert "discord.user.id" in ping.attributes
    slash = telemetry.one("command config set")
    assert slash.attributes["discord.command.options"] == "key='colour', value='red'"


async def test_private_by_default(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!ping")
    await telemetry.settle(lambda: telemetry.named("command ping"))
    for span in telemetry.spans():
        assert "discord.user.id" not in span.attributes
        assert "discord.message.content" not in span.attributes


async def test_set_discord_context(telemetry: Telemetry) -> None:
    seen: list[dict[str, Any]] = []
    tracer = telemetry.tracer_provider.get_tracer("tests")
    async with running_bot() as harness:

        @harness.bot.command()
        async def whoami(ctx: Any) -> None:
            with tracer.start_as_current_span("mine"):
                seen.append(set_discord_context())
            await ctx.send("ok")

        await harness.sim.send_message("!whoami")
        await telemetry.settle(lambda: telemetry.named("mine"))
    mine = telemetry.one("mine")
    assert mine.attributes["discord.command.name"] == "whoami"
    assert "discord.guild.id" in mine.attributes
    assert seen[0]["discord.command.name"] == "whoami"
    assert set_discord_context() == {}
    assert trace.get_current_span() is trace.INVALID_SPAN


async def test_metrics_only_records_without_a_tracer(
    telemetry: Telemetry, gateway_parser: str
) -> None:
    """With no tracer provider (metrics only), listener runs go through the untraced
    ``_run_event`` (the compiled runner where built) and a failing listener still
    reaches ``on_error`` and the ``error.type`` series; commands and REST calls are
    still measured."""
    reinstrument(telemetry, NoOpTracerProvider())
    installed = vars(discord.Client)["_run_event"]
    if gateway_parser == "compiled":
        assert type(installed).__name__ == "ListenerRunner"
    else:
        assert installed is listeners._run_event_untraced
    seen: list[dict[str, Any]] = []
    async with running_bot() as harness:

        @harness.bot.command()
        async def whoami(ctx: Any) -> None:
            seen.append(set_discord_context())
            await ctx.send("you")

        await harness.sim.send_message("listener-boom", wait=False)
        await harness.sim.send_message("!ping")
        await harness.sim.send_message("!whoami")
        await harness.sim.send_message("!crash", wait=False)
        await harness.sim.send_message("!forbidden", wait=False)
        await harness.sim.slash("config deny", {})
        await telemetry.settle(
            lambda: (
                harness.behaviour.listener_errors
                and len(harness.behaviour.command_errors) == 2
                and harness.behaviour.app_errors
            )
        )
        metrics = telemetry.metrics()
    assert harness.behaviour.listener_errors == ["on_message"]
    # the untraced command's context, found by its task
    assert seen[0]["discord.command.name"] == "whoami"
    # failures recorded where discord.py reports them, by type
    commands = attrs(metrics["discord.command.duration"])
    for name, kind, error in [
        ("crash", "prefix", "ValueError"),
        ("forbidden", "prefix", "CheckFailure"),
        ("config deny", "slash", "MissingPermissions"),
    ]:
        assert {
            "discord.command.name": name,
            "discord.command.type": kind,
            "discord.command.outcome": "error",
            "error.type": error,
        } in commands
    assert handlers._untraced == {}  # nothing kept once the commands are over
    listener = attrs(metrics["discord.listener.duration"])
    assert {"discord.listener.name": "on_message", "error.type": "KeyError"} in listener
    assert {"discord.listener.name": "on_message"} in listener
    assert {
        "discord.command.name": "ping",
        "discord.command.type": "prefix",
        "discord.command.outcome": "success",
    } in attrs(metrics["discord.command.duration"])
    rest = attrs(metrics["discord.rest.request.duration"])
    assert any(a["url.template"] == "/channels/{channel_id}/messages" for a in rest)
    assert telemetry.spans() == []
    telemetry.uninstrument()
    assert vars(discord.Client)["_run_event"] is not installed
