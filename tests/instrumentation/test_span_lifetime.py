"""A finished command's spans are freed as it finishes, not by the cyclic collector.

aiohttp and asyncio schedule timers with the context current when they start
them, and a cancelled timer keeps its context until its time comes. A REST
call's span is current while aiohttp starts its timers, so those contexts hold
it; they must not hold the command's chain of spans (its event's, its
listener's, its own) with it: on a busy bot that chain would pass through the
collector's older generations instead of being freed at once.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from tests.instrumentation.conftest import Harness, Telemetry

from discord_otel.instrumentation.recording import RecordingSpan
from discord_otel.instrumentation.spans import DiscordSpan, StandingSpan


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _alive_spans() -> list[DiscordSpan]:
    return [o for o in gc.get_objects() if isinstance(o, DiscordSpan)]


async def test_finished_commands_leave_no_spans_behind(
    telemetry: Telemetry, harness: Harness, collector_off: None
) -> None:
    before = {id(span) for span in _alive_spans()}
    for _ in range(20):
        await harness.sim.slash("config set", {"key": "a", "value": "b"})
        await harness.sim.send_message("!echo hi")
    await asyncio.sleep(0.1)

    names = {span.name for span in telemetry.spans()}
    assert {"command config set", "command echo", "gateway MESSAGE_CREATE"} <= names
    left = [span for span in _alive_spans() if id(span) not in before]
    # what contexts copied during the REST calls still hold: stand-ins holding
    # only their ended span's context (the bot's start-up may still be ending)
    commands = {"command config set", "command echo", "listener on_message"}
    assert [s for s in left if s.name in commands or s.name.startswith("gateway INTER")] == []
    assert [s for s in left if s.name == "gateway MESSAGE_CREATE"] == []
    for standing in [span for span in left if type(span) is StandingSpan]:
        assert standing.parent is None
        assert type(standing.real) is not RecordingSpan
        assert standing.real is not None
        assert standing.real.get_span_context().is_valid
