"""Spans of a real bot against the simulator: names, kinds, parents, attributes, status."""

from __future__ import annotations

from opentelemetry.trace import SpanKind, StatusCode
from tests.instrumentation.conftest import Harness, Telemetry

from discord_otel.instrumentation import runtime


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


async def test_message_without_command_exports_nothing(
    telemetry: Telemetry, harness: Harness
) -> None:
    await harness.sim.send_message("just chatting", wait=False)
    await harness.sim.send_message("!ping")  # a marker that the first one was handled
    await telemetry.settle(lambda: telemetry.named("command ping"))
    gateways = telemetry.named("gateway MESSAGE_CREATE")
    assert len(gateways) == 1  # only the command's message has a trace


async def test_unknown_command_is_bounded(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!no-such-thing-42", wait=False)
    await telemetry.settle(lambda: telemetry.named("command (unknown)"))
    span = telemetry.one("command (unknown)")
    assert span.attributes["discord.command.outcome"] == "error"
    assert span.attributes["error.type"] == "CommandNotFound"
    assert span.status.status_code is StatusCode.ERROR
    assert "no-such-thing" not in str(span.attributes)
    assert harness.behaviour.command_errors == ["CommandNotFound"]


async def test_check_failure_and_crash_are_errors(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!forbidden", wait=False)
    await harness.sim.send_message("!crash", wait=False)
    await telemetry.settle(
        lambda: telemetry.named("command forbidden") and telemetry.named("command crash")
    )
    forbidden = telemetry.one("command forbidden")
    assert forbidden.attributes["error.type"] == "CheckFailure"
    assert forbidden.attributes["discord.command.outcome"] == "error"
    crash = telemetry.one("command crash")
    assert crash.attributes["error.type"] == "ValueError"
    assert crash.status.status_code is StatusCode.ERROR
    await telemetry.settle(lambda: len(harness.behaviour.command_errors) == 2)
    assert sorted(harness.behaviour.command_errors) == ["CheckFailure", "CommandInvokeError"]


async def test_prefix_group_subcommand(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!settings show")
    await telemetry.settle(lambda: telemetry.named("command settings show"))
    span = telemetry.one("command settings show")
    assert span.attributes["discord.command.name"] == "settings show"


async def test_listener_error_span(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("listener-boom", wait=False)
    await telemetry.settle(lambda: harness.behaviour.listener_errors)
    await telemetry.settle(
        lambda: [
            s for s in telemetry.named("listener on_message") if s.attributes.get("error.type")
        ]
    )
    failed = [s for s in telemetry.named("listener on_message") if s.attributes.get("error.type")]
    assert failed[0].attributes["error.type"] == "KeyError"
    assert telemetry.parent(failed[0]).name == "gateway MESSAGE_CREATE"
    assert harness.behaviour.listener_errors == ["on_message"]


async def test_slash_group_command(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.slash("config set", options={"key": "colour", "value": "red"})
    await telemetry.settle(lambda: telemetry.named("command config set"))
    span = telemetry.one("command config set")
    assert span.kind is SpanKind.SERVER
    assert span.attributes["discord.command.type"] == "slash"
    assert span.attributes["discord.command.outcome"] == "success"
    assert "discord.command.options" not in span.attributes  # not opted in
    assert telemetry.parent(span).name == "gateway INTERACTION_CREATE"
    callback = telemetry.one("POST /interactions/{webhook_id}/{webhook_token}/callback")
    assert telemetry.parent(callback).name == "command config set"
    acks = [e for e in span.events if e.name == "discord.interaction.ack"]
    assert len(acks) == 1
    assert acks[0].attributes["discord.interaction.ack.duration"] >= 0


async def test_slash_missing_permissions(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.slash("config deny")
    await telemetry.settle(lambda: telemetry.named("command config deny"))
    span = telemetry.one("command config deny")
    assert span.attributes["error.type"] == "MissingPermissions"
    assert span.attributes["discord.command.outcome"] == "error"
    assert harness.behaviour.app_errors == ["MissingPermissions"]


async def test_hybrid_one_span_either_way(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!echo hi")
    await harness.sim.slash("echo", options={"text": "there"})
    await telemetry.settle(lambda: len(telemetry.named("command echo")) == 2)
    spans = telemetry.named("command echo")
    assert [s.attributes["discord.command.type"] for s in spans] == ["hybrid", "hybrid"]
    assert {s.attributes["discord.cog"] for s in spans} == {"Tools"}
    assert {telemetry.parent(s).name for s in spans} == {
        "listener on_message",
        "gateway INTERACTION_CREATE",
    }


async def test_context_menus(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.user_command("Inspect")
    await harness.sim.message_command("Quote")
    await telemetry.settle(
        lambda: telemetry.named("command Inspect") and telemetry.named("command Quote")
    )
    assert telemetry.one("command Inspect").attributes["discord.command.type"] == "user"
    assert telemetry.one("command Quote").attributes["discord.command.type"] == "message"


async def test_autocomplete(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.autocomplete("echo", "text", "h")
    await telemetry.settle(lambda: telemetry.named("autocomplete echo"))
    span = telemetry.one("autocomplete echo")
    assert span.kind is SpanKind.SERVER
    assert span.attributes["discord.command.name"] == "echo"


async def test_buttons_selects_and_links(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!buttons")
    await harness.sim.click("confirm")
    await harness.sim.select("colour", ["red"])
    await telemetry.settle(
        lambda: (
            telemetry.named("component Confirm.confirm")
            and telemetry.named("component Confirm.colour")
        )
    )
    command = telemetry.one("command buttons")
    click = telemetry.one("component Confirm.confirm")
    assert click.kind is SpanKind.SERVER
    assert click.attributes["discord.component.name"] == "Confirm.confirm"
    assert click.attributes["discord.component.type"] == "button"
    assert click.attributes["discord.component.custom_id"] == "confirm"
    assert [link.context.span_id for link in click.links] == [command.context.span_id]
    select = telemetry.one("component Confirm.colour")
    assert select.attributes["discord.component.type"] == "select"
    # only messages with components are remembered for links: a plain reply is not
    remembered = len(runtime.active.message_spans) if runtime.active else -1
    await harness.sim.send_message("!ping")
    await telemetry.settle(lambda: telemetry.named("command ping"))
    assert runtime.active is not None
    assert len(runtime.active.message_spans) == remembered > 0


async def test_view_error_reaches_on_error(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!buttons")
    await harness.sim.click("explode")
    await telemetry.settle(lambda: telemetry.named("component Confirm.explode"))
    span = telemetry.one("component Confirm.explode")
    assert span.attributes["error.type"] == "RuntimeError"
    assert harness.behaviour.view_errors == ["RuntimeError"]


async def test_modal_and_dynamic_item(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.slash("survey")
    await harness.sim.submit("feedback", {"answer": "yes"})
    await harness.sim.send_message("!counter")
    await harness.sim.click("counter:1")
    await telemetry.settle(
        lambda: (
            telemetry.named("modal Feedback")
            and telemetry.named("component counter:(?P<count>[0-9]+)")
        )
    )
    modal = telemetry.one("modal Feedback")
    assert modal.attributes["discord.component.type"] == "modal"
    assert modal.attributes["discord.component.custom_id"] == "feedback"
    dynamic = telemetry.one("component counter:(?P<count>[0-9]+)")
    assert dynamic.attributes["discord.component.custom_id"] == "counter:1"


async def test_view_timeout_unchanged(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!short")
    await telemetry.settle(lambda: harness.behaviour.timeouts == 1, timeout=5)
    assert harness.behaviour.timeouts == 1


async def test_ratelimited_rest_call(telemetry: Telemetry, harness: Harness) -> None:
    harness.sim.faults.add_ratelimit(
        route="POST /channels/{channel_id}/messages", scope="bucket", retry_after=0.05, times=1
    )
    await harness.sim.send_message("!ping")
    await telemetry.settle(lambda: telemetry.named("command ping"))
    rest = telemetry.one("POST /channels/{channel_id}/messages")
    events = [e for e in rest.events if e.name == "discord.ratelimited"]
    assert len(events) == 1
    assert events[0].attributes["discord.ratelimit.scope"] == "bucket"
    assert events[0].attributes["discord.ratelimit.retry_after"] == 0.05
    assert rest.attributes["http.request.resend_count"] == 1
    assert rest.attributes["http.response.status_code"] == 200


async def test_no_token_anywhere(telemetry: Telemetry, harness: Harness) -> None:
    await harness.sim.send_message("!ping")
    await harness.sim.slash("config set", options={"key": "a", "value": "b"})
    await harness.sim.slash("panel")
    await harness.sim.click("confirm")
    await telemetry.settle(lambda: telemetry.named("component Confirm.confirm"))
    tokens = {harness.sim.token}
    tokens |= {
        str(c.path).split("/")[3] for c in harness.sim.rest_log if "/interactions/" in c.path
    }
    tokens |= {
        str(c.path).split("/")[3]
        for c in harness.sim.rest_log
        if c.path.startswith("/api/v10/webhooks/") or "/webhooks/" in c.path
    }
    tokens = {t for t in tokens if len(t) > 10}
    assert tokens
    for span in telemetry.spans():
        text = repr(
            (
                span.name,
                dict(span.attributes or {}),
                [(e.name, dict(e.attributes or {})) for e in span.events],
            )
        )
        for token in tokens:
            assert token not in text, span.name


async def test_rest_span_is_current_during_the_call(telemetry: Telemetry, harness: Harness) -> None:
    """discord.py's own log lines inside a REST call (``discord.http`` at DEBUG)
    are made while the call's span is current: its trace and span id."""
    import logging

    from opentelemetry import trace

    seen: list[tuple[str, int, int]] = []

    class Capture(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            context = trace.get_current_span().get_span_context()
            seen.append((record.getMessage(), context.trace_id, context.span_id))
            return True

    logger = logging.getLogger("discord.http")
    capture = Capture()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addFilter(capture)
    try:
        await harness.sim.send_message("!settings show")
        await telemetry.settle(lambda: telemetry.named("POST /channels/{channel_id}/messages"))
    finally:
        logger.removeFilter(capture)
        logger.setLevel(level)
    rest = telemetry.one("POST /channels/{channel_id}/messages")
    assert telemetry.parent(rest).name == "command settings show"
    returned = [entry for entry in seen if "has returned 200" in entry[0]]
    assert returned, seen
    assert {(trace_id, span_id) for _, trace_id, span_id in returned} == {
        (rest.context.trace_id, rest.context.span_id)
    }
