"""The traced gateway parser on its own, compiled (``discord_otel._gateway_speedups``)
and Python: the same count, sampling decision and stand-in span per event, and
discord.py's parser sees its payload, its return value and its exceptions unchanged.
(test_sampling.py runs both through a real bot.)"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from tests.instrumentation.conftest import Telemetry, reinstrument

from discord_otel.config import DiscordOtelSettings
from discord_otel.instrumentation import gateway, runtime, safety
from discord_otel.instrumentation.gateway import GatewaySpan, SampledOutGatewaySpan
from discord_otel.instrumentation.spans import CURRENT, DiscordSpan

pytestmark = pytest.mark.usefixtures("gateway_parser")

PAYLOAD = {"id": "5", "guild_id": "111", "channel_id": "222", "content": "hello"}


class Seen:
    """discord.py's parser, as far as the wrapper can tell: records what was
    current while it ran, answers or raises as told."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.current: list[DiscordSpan | None] = []
        self.error = error
        self.answer = object()

    def __call__(self, data: Any) -> Any:
        self.current.append(CURRENT.get())
        if self.error is not None:
            raise self.error
        return self.answer


@pytest.fixture
def sampled(telemetry: Telemetry) -> Iterator[Any]:
    """The instrumentation's runtime, tracing at 50% (ParentBased(TraceIdRatioBased))."""
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.5)))
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    reinstrument(telemetry, provider)
    assert runtime.active is not None
    yield runtime.active
    telemetry.uninstrument()


def traced_parser(rt: Any, func: Any, event: str = "MESSAGE_CREATE") -> tuple[Any, list[int]]:
    cell = [0]
    return gateway._traced_parser(rt, event, 3, func, cell), cell


def test_the_parser_in_use_is_the_one_chosen(sampled: Any, gateway_parser: str) -> None:
    parser, _ = traced_parser(sampled, Seen())
    compiled = type(parser).__module__ == "discord_otel._gateway_speedups"
    assert compiled == (gateway_parser == "compiled")


def test_each_event_is_counted_and_decided_by_the_samplers_rule(sampled: Any) -> None:
    seen = Seen()
    parser, cell = traced_parser(sampled, seen)
    random.seed(11)
    answers = [parser(dict(PAYLOAD, id=str(n))) for n in range(200)]

    assert cell == [200]
    assert all(answer is seen.answer for answer in answers)
    assert CURRENT.get() is None  # each event's span was current only while it was parsed
    bound = TraceIdRatioBased(0.5).bound
    kept = [span for span in seen.current if type(span) is GatewaySpan]
    dropped = [span for span in seen.current if type(span) is SampledOutGatewaySpan]
    assert len(kept) + len(dropped) == 200
    assert 60 < len(kept) < 140  # the ratio, not all or nothing
    for span in kept:
        assert span.trace_id is not None
        assert span.trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < bound
        assert not span.sampled_out
        assert span.tracer is sampled.tracer
        assert span.name == "gateway MESSAGE_CREATE"
        assert span.attributes == {"discord.gateway.event": "MESSAGE_CREATE", "discord.shard.id": 3}
        assert (span.guild_id, span.channel_id) == ("111", "222")
        assert span.data is None
        assert (span.real, span.parent, span.error) == (None, None, None)
        assert span.end_ns is not None  # ended when the parse returned
        assert 0 < span.start_ns <= span.end_ns
    for span in dropped:
        assert span.trace_id is not None
        assert span.trace_id & TraceIdRatioBased.TRACE_ID_LIMIT >= bound
        assert span.sampled_out
        assert span.tracer is sampled.tracer
        assert span.name == "gateway MESSAGE_CREATE"
        assert span.attributes == {"discord.gateway.event": "MESSAGE_CREATE", "discord.shard.id": 3}
        assert (span.guild_id, span.channel_id) == ("111", "222")
        assert span.data is None  # payload content not opted in
        assert span.real is None
        assert span.parent is None
        assert span.error is None
    # every event its own trace id, kept or dropped
    assert len({span.trace_id for span in seen.current if span is not None}) == 200  # type: ignore[union-attr]


def test_both_parsers_draw_the_same_decisions(
    sampled: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def decisions() -> list[tuple[str, int | None]]:
        seen = Seen()
        parser, _ = traced_parser(sampled, seen)
        random.seed(5)
        for _ in range(50):
            parser(dict(PAYLOAD))
        return [(type(span).__name__, getattr(span, "trace_id", None)) for span in seen.current]

    first = decisions()
    built = gateway._load_speedups()
    monkeypatch.setattr(gateway, "speedups", None if gateway.speedups is not None else built)
    assert decisions() == first


@pytest.mark.parametrize(
    ("payload", "guild_id", "channel_id"),
    [
        # an interaction carries its channel as an object
        ({"id": "1", "guild_id": "7", "channel": {"id": "8", "type": 0}}, "7", "8"),
        ({"id": "1", "channel_id": "", "channel": {"id": "8"}}, None, "8"),
        ({"id": "1", "channel": "not an object"}, None, None),
        ({"id": "1"}, None, None),
        (["not", "a", "dict"], None, None),
        (None, None, None),
    ],
)
@pytest.mark.parametrize("ratio", [0.0, 1.0])  # every root dropped, every root kept
def test_an_event_keeps_what_it_can_be_asked(
    telemetry: Telemetry, payload: Any, guild_id: Any, channel_id: Any, ratio: float
) -> None:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    reinstrument(telemetry, provider)
    seen = Seen()
    parser, cell = traced_parser(runtime.active, seen, "INTERACTION_CREATE")
    assert parser(payload) is seen.answer
    (span,) = seen.current
    assert type(span) is (GatewaySpan if ratio else SampledOutGatewaySpan)
    assert (span.guild_id, span.channel_id) == (guild_id, channel_id)
    assert cell == [1]


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_an_event_keeps_its_payload_when_content_is_opted_in(
    telemetry: Telemetry, ratio: float
) -> None:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    reinstrument(telemetry, provider, DiscordOtelSettings(capture_message_content=True))
    seen = Seen()
    parser, _ = traced_parser(runtime.active, seen)
    payload = dict(PAYLOAD)
    parser(payload)
    (span,) = seen.current
    assert type(span) is (GatewaySpan if ratio else SampledOutGatewaySpan)
    assert span.data is payload
    # and what it answers for the event when asked (a log record, set_discord_context)
    assert span.discord_attributes()["discord.message.content"] == "hello"


def test_a_kept_event_whose_span_was_needed_is_exported_when_the_parse_ends(
    telemetry: Telemetry,
) -> None:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(1.0)))
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reinstrument(telemetry, provider)
    needed: list[int] = []

    def parse_needing_the_span(data: Any) -> None:
        span = CURRENT.get()
        assert span is not None
        needed.append(span.materialise().get_span_context().trace_id)
        assert exporter.get_finished_spans() == ()  # not ended while the parse runs

    parser, _ = traced_parser(runtime.active, parse_needing_the_span)
    parser(dict(PAYLOAD))
    (exported,) = exporter.get_finished_spans()
    assert exported.name == "gateway MESSAGE_CREATE"
    assert exported.context is not None
    assert exported.context.trace_id == needed[0]
    assert exported.attributes is not None
    assert exported.attributes["discord.guild.id"] == "111"


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_discord_pys_exception_passes_unchanged(telemetry: Telemetry, ratio: float) -> None:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(ratio)))
    reinstrument(telemetry, provider)
    error = KeyError("members")
    seen = Seen(error)
    parser, cell = traced_parser(runtime.active, seen)
    with pytest.raises(KeyError) as raised:
        parser(dict(PAYLOAD))
    assert raised.value is error
    assert CURRENT.get() is None  # the event's span is not left current
    assert cell == [1]
    with pytest.raises(TypeError):  # called as discord.py never would: as a function would fail
        parser()


def test_no_sampler_rule_traces_every_event(telemetry: Telemetry) -> None:
    """A sampler the parser cannot decide for (not a ratio): every event gets its
    span and the SDK decides when it is exported."""
    provider = TracerProvider()  # ParentBased(ALWAYS_ON)
    reinstrument(telemetry, provider)
    seen = Seen()
    parser, cell = traced_parser(runtime.active, seen)
    for _ in range(3):
        parser(dict(PAYLOAD))
    assert [type(span) for span in seen.current] == [GatewaySpan] * 3
    assert cell == [3]


def test_the_compiled_parser_rereads_the_rule_when_span_processors_change(
    gateway_parser: str,
) -> None:
    if gateway_parser != "compiled":
        pytest.skip("the Python parser keeps the same cache (test_sampling covers it)")
    speedups = gateway.speedups

    class Processors:
        _span_processors: tuple[Any, ...] = ()

    asked: list[int] = []
    draws = iter(range(1, 1000))

    def rule_for() -> tuple[Any, int]:
        asked.append(1)
        return (lambda: next(draws), 3)  # trace ids 1, 2 kept; 3 and up dropped

    processor = Processors()
    seen = Seen()

    def compiled_parser(span_processor: Any) -> Any:
        return speedups.GatewayParser(
            seen, [0], rule_for, span_processor, CURRENT, GatewaySpan, SampledOutGatewaySpan,
            time.time_ns, None, "gateway X", {}, False,
        )  # fmt: skip

    parser = compiled_parser(processor)
    assert [parser({}) for _ in range(3)] == [seen.answer] * 3
    decided = [(type(span), span.trace_id) for span in seen.current if span is not None]
    assert decided == [(GatewaySpan, 1), (GatewaySpan, 2), (SampledOutGatewaySpan, 3)]
    assert len(asked) == 1  # read once while the span processors stay the same
    processor._span_processors = (object(),)
    parser({})
    assert len(asked) == 2

    no_processor = compiled_parser(None)
    no_processor({})
    no_processor({})
    assert len(asked) == 4  # nothing to watch: asked every event, as the Python one does


def test_a_compiled_parser_that_cannot_be_built_leaves_the_python_one(
    sampled: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @staticmethod
        def GatewayParser(*args: Any) -> Any:
            raise TypeError("SampledOutGatewaySpan.tracer is not a slot")

    monkeypatch.setattr(gateway, "speedups", Broken)
    safety.reset()  # reported once per site: this test wants to see it
    seen = Seen()
    parser, cell = traced_parser(sampled, seen)
    assert parser(dict(PAYLOAD)) is seen.answer
    assert cell == [1]
    assert "compiled gateway parser" in caplog.text


def test_the_setting_turns_the_compiled_parser_off(
    telemetry: Telemetry, gateway_parser: str
) -> None:
    provider = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.5)))
    reinstrument(telemetry, provider, DiscordOtelSettings(compiled=False))
    parser, _ = traced_parser(runtime.active, Seen())
    assert type(parser).__name__ == "function"  # the Python closure, compiled one built or not
