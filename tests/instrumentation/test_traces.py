"""Spans of a real bot against the simulator: names, kinds, parents, attributes, status."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, StatusCode
from tests.instrumentation.conftest import Harness, Telemetry


async def test_prefix_command_trace(telemetry: Telemetry, harness: Harness) -> None:
    calls = await harness.sim.send_message("!ping")
    assert any(c.route == "/channels/{channel_id}/messages" for c in calls)
    await telemetry.settle(lambda: telemetry.named("command ping"))
    command = telemetry.one("command ping")
    assert command.kind is SpanKind.SERVER
    assert command.attributes["discord.command.name"] == "ping"
    assert command.attributes["discord.command.type"] == "prefix"
    assert command.attributes["discord.command.outcome"] == "success"
    assert command.status.status_code is not StatusCode.ERROR
    assert telemetry.chain(command) == [
        "command ping",
        "listener on_message",
        "gateway MESSAGE_CREATE",
    ]
    gateway = telemetry.parent(telemetry.parent(command))
    assert gateway.kind is SpanKind.CONSUMER
    assert gateway.attributes["discord.gateway.event"] == "MESSAGE_CREATE"
    assert gateway.attributes["discord.shard.id"] == 0
    assert "discord.guild.id" in gateway.attributes
    assert "discord.channel.id" in gateway.attributes
    user = telemetry.one("user work")
    assert telemetry.parent(user).name == "command ping"
    rest = telemetry.one("POST /channels/{channel_id}/messages")
    assert rest.kind is SpanKind.CLIENT
    assert telemetry.parent(rest).name == "user work"
    assert rest.attributes["http.response.status_code"] == 200
    assert rest.attributes["url.template"] == "/channels/{channel_id}/messages"
