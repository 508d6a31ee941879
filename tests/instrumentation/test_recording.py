"""The instrumentation's own span path (``recording.start_span``) against the SDK's.

Every test makes the same spans twice: through the fast path (a provider with the
SDK's simple processor) and through ``Tracer.start_span`` (the same provider plus
a processor of the user's own, which turns the fast path off), and compares what
the exporter receives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import (
    INVALID_SPAN,
    Link,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from discord_otel.instrumentation import recording


class _UsersProcessor(SpanProcessor):
    """A processor of the bot's own: the fast path must step aside for it."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        span.set_attribute("seen.by.processor", True)


def _provider(fast: bool, **kwargs: Any) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(**kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if not fast:
        provider.add_span_processor(_UsersProcessor())
    return provider, exporter


def _both(
    scenario: Callable[[Any], None], **kwargs: Any
) -> tuple[list[ReadableSpan], list[ReadableSpan]]:
    results = []
    for fast in (True, False):
        provider, exporter = _provider(fast, **kwargs)
        tracer = provider.get_tracer("discord_otel", "1.0")
        assert (recording._pipeline_for(tracer) is not None) is fast
        scenario(tracer)
        results.append(list(exporter.get_finished_spans()))
    return results[0], results[1]


def _shape(span: ReadableSpan) -> dict[str, Any]:
    """What a backend shows of a span, minus ids and times."""
    attributes = dict(span.attributes or {})
    attributes.pop("seen.by.processor", None)
    return {
        "name": span.name,
        "kind": span.kind,
        "attributes": attributes,
        "dropped_attributes": span.dropped_attributes,
        "events": [(e.name, dict(e.attributes or {})) for e in span.events],
        "dropped_events": span.dropped_events,
        "links": [(link.context.span_id, dict(link.attributes or {})) for link in span.links],
        "status": (span.status.status_code, span.status.description),
        "has_parent": span.parent is not None,
        "resource": span.resource,
        "scope": span.instrumentation_scope,
        "sampled": span.context.trace_flags.sampled,
        "trace_state": span.context.trace_state,
    }


def _same(fast: list[ReadableSpan], sdk: list[ReadableSpan]) -> None:
    assert [_shape(s) for s in fast] == [_shape(s) for s in sdk]
    assert fast  # something was exported


def test_a_command_tree_is_exported_as_the_sdk_would() -> None:
    linked = SpanContext(0xABC, 0xDEF, is_remote=False, trace_flags=TraceFlags(1))

    def scenario(tracer: Any) -> None:
        gateway = recording.start_span(
            tracer,
            "gateway INTERACTION_CREATE",
            INVALID_SPAN,
            SpanKind.CONSUMER,
            {"discord.gateway.event": "INTERACTION_CREATE", "discord.shard.id": 0},
            start_time=1_000,
        )
        command = recording.start_span(
            tracer,
            "command ping",
            gateway,
            SpanKind.SERVER,
            {"discord.command.name": "ping"},
            links=[Link(linked)],
        )
        rest = recording.start_span(
            tracer,
            "POST /channels/{channel_id}/messages",
            command,
            SpanKind.CLIENT,
            {"http.request.method": "POST"},
        )
        recording.set_internal(rest, "http.response.status_code", 500)
        rest.set_status(Status(StatusCode.ERROR, "500"))
        rest.end()
        recording.add_internal_event(
            command, "discord.interaction.ack", {"discord.interaction.type": "command"}
        )
        command.set_attribute("user.custom", [1, 2, 3])  # the bot's own attribute: cleaned
        command.update_name("command pong")
        command.end()
        gateway.end(end_time=2_000)

    fast, sdk = _both(scenario)
    _same(fast, sdk)
    rest, command, gateway = fast
    assert command.attributes["user.custom"] == (1, 2, 3)
    assert rest.parent.span_id == command.context.span_id
    assert command.parent.span_id == gateway.context.span_id
    assert rest.context.trace_id == command.context.trace_id == gateway.context.trace_id
    assert gateway.start_time == 1_000
    assert gateway.end_time == 2_000
    assert command.context.span_id != gateway.context.span_id


def test_limits_drop_what_the_sdk_drops() -> None:
    limits = SpanLimits(max_span_attributes=2, max_events=1, max_links=1)

    def scenario(tracer: Any) -> None:
        links = [
            Link(SpanContext(1, 2, is_remote=False)),
            Link(SpanContext(1, 3, is_remote=False)),
        ]
        span = recording.start_span(tracer, "x", INVALID_SPAN, attributes={"a": 1}, links=links)
        for key in ("b", "c", "d"):
            span.set_attribute(key, key)
        recording.add_internal_event(span, "zero", {"n": 0})
        span.add_event("one")
        span.add_event("two")
        span.end()

    fast, sdk = _both(scenario, span_limits=limits)
    # the processor of the SDK variant takes an attribute slot: compare what fits both
    assert fast[0].dropped_attributes == 2
    assert dict(fast[0].attributes) == {"c": "c", "d": "d"}
    assert [e.name for e in fast[0].events] == [e.name for e in sdk[0].events] == ["two"]
    assert fast[0].dropped_events == sdk[0].dropped_events == 2
    assert len(fast[0].links) == len(sdk[0].links) == 1
    assert fast[0].dropped_links == sdk[0].dropped_links == 1


def test_internal_events_keep_to_the_events_limit() -> None:
    limits = SpanLimits(max_events=2)

    def scenario(tracer: Any) -> None:
        span = recording.start_span(tracer, "x", INVALID_SPAN)
        for index in range(3):
            recording.add_internal_event(span, f"e{index}", {"n": index})
        span.add_event("public")
        span.end()

    fast, sdk = _both(scenario, span_limits=limits)
    _same(fast, sdk)
    assert [e.name for e in fast[0].events] == ["e2", "public"]
    assert fast[0].dropped_events == 2


def test_an_ended_span_ignores_changes() -> None:
    def scenario(tracer: Any) -> None:
        span = recording.start_span(tracer, "x", INVALID_SPAN, attributes={"a": 1})
        span.end()
        span.set_attribute("late", 1)
        recording.set_internal(span, "late.internal", 1)
        span.set_status(StatusCode.ERROR)
        span.add_event("late")
        span.end()  # a second end exports nothing more

    fast, sdk = _both(scenario)
    _same(fast, sdk)
    assert len(fast) == 1
    assert "late" not in (fast[0].attributes or {})


def test_ok_status_is_final_and_unset_is_ignored() -> None:
    def scenario(tracer: Any) -> None:
        span = recording.start_span(tracer, "x", INVALID_SPAN)
        span.set_status(StatusCode.UNSET)
        span.set_status(Status(StatusCode.OK))
        span.set_status(StatusCode.ERROR, "late")
        span.end()

    fast, sdk = _both(scenario)
    _same(fast, sdk)
    assert fast[0].status.status_code is StatusCode.OK


def test_record_exception_and_context_manager_exit() -> None:
    def scenario(tracer: Any) -> None:
        span = recording.start_span(tracer, "x", INVALID_SPAN)
        with pytest.raises(KeyError), span:
            raise KeyError("boom")

    fast, sdk = _both(scenario)
    assert [e.name for e in fast[0].events] == ["exception"]
    for key in ("exception.type", "exception.message", "exception.escaped"):
        assert fast[0].events[0].attributes[key] == sdk[0].events[0].attributes[key]
    assert fast[0].status.status_code is StatusCode.ERROR
    assert fast[0].status.description == sdk[0].status.description


@pytest.mark.parametrize("remote", [False, True])
@pytest.mark.parametrize("sampled", [False, True])
def test_parent_based_sampling_follows_the_parent(sampled: bool, remote: bool) -> None:
    state = TraceState([("vendor", "value")])
    parent = NonRecordingSpan(
        SpanContext(
            0x1234,
            0x5678,
            is_remote=remote,
            trace_flags=TraceFlags(int(sampled)),
            trace_state=state,
        )
    )
    for fast in (True, False):
        provider, exporter = _provider(fast, sampler=ParentBased(ALWAYS_ON))
        span = recording.start_span(provider.get_tracer("t"), "child", parent)
        context = span.get_span_context()
        assert context.trace_id == 0x1234
        assert context.trace_flags.sampled is sampled
        assert context.trace_state == state
        assert span.is_recording() is sampled
        span.end()
        exported = exporter.get_finished_spans()
        assert len(exported) == int(sampled)
        if sampled:
            assert exported[0].parent.span_id == 0x5678
            assert exported[0].parent.is_remote is remote


def test_a_dropped_root_gets_a_valid_unsampled_context() -> None:
    provider, exporter = _provider(True, sampler=TraceIdRatioBased(0.0))
    span = recording.start_span(provider.get_tracer("t"), "root", INVALID_SPAN)
    assert isinstance(span, NonRecordingSpan)
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert exporter.get_finished_spans() == ()


class _SequentialIds(RandomIdGenerator):
    """Trace ids spread evenly over the low 64 bits, so a ratio is hit exactly."""

    def __init__(self, step: int) -> None:
        self.next_low = 0
        self.step = step

    def generate_trace_id(self) -> int:
        self.next_low = (self.next_low + self.step) % (1 << 64)
        return (0xABC << 64) | self.next_low


@pytest.mark.parametrize(
    ("sampler", "fraction"),
    [
        (ParentBasedTraceIdRatio(0.25), 0.25),
        (ParentBased(ALWAYS_ON), 1),
        (ParentBased(ALWAYS_OFF), 0),
    ],
    ids=["ratio", "always_on", "always_off"],
)
def test_root_decisions_are_the_samplers(sampler: Sampler, fraction: float) -> None:
    """Roots under ParentBased over the SDK's ratio or static samplers are decided
    without calling the sampler: each decision must be the sampler's own."""
    n = 400
    provider, _ = _provider(True, sampler=sampler, id_generator=_SequentialIds((1 << 64) // n))
    tracer = provider.get_tracer("t")
    pipeline = recording._pipeline_for(tracer)
    assert pipeline is not None
    assert pipeline.root_bound is not None  # the shortcut is taken
    sampled = 0
    for _ in range(n):
        span = recording.start_span(tracer, "root", INVALID_SPAN)
        context = span.get_span_context()
        expected = sampler.should_sample(None, context.trace_id, "root").decision
        assert context.trace_flags.sampled == (expected is Decision.RECORD_AND_SAMPLE)
        sampled += context.trace_flags.sampled
        span.end()
    assert sampled == round(n * fraction)


class _RecordOnly(Sampler):
    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record only"


def test_record_only_is_left_to_the_sdk() -> None:
    provider, exporter = _provider(True, sampler=_RecordOnly())
    span = recording.start_span(provider.get_tracer("t"), "root", INVALID_SPAN)
    assert span.is_recording()
    assert not span.get_span_context().trace_flags.sampled
    assert not isinstance(span, recording.RecordingSpan)
    span.end()
    assert exporter.get_finished_spans() == ()  # recorded, never exported


def test_a_length_limit_or_sdk_metrics_turn_the_fast_path_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider, exporter = _provider(True, span_limits=SpanLimits(max_attribute_length=3))
    tracer = provider.get_tracer("t")
    assert recording._pipeline_for(tracer) is None
    span: Span = recording.start_span(tracer, "x", INVALID_SPAN, attributes={"a": "abcdef"})
    span.end()
    assert exporter.get_finished_spans()[0].attributes["a"] == "abc"

    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")
    provider, _ = _provider(True)
    assert recording._pipeline_for(provider.get_tracer("t")) is None


def test_a_dropped_child_is_known_without_starting_it() -> None:
    provider, exporter = _provider(True, sampler=ParentBased(ALWAYS_ON))
    tracer = provider.get_tracer("t")
    unsampled = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(0)))
    sampled = NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1)))
    remote = NonRecordingSpan(SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(0)))
    assert recording.dropped_child(tracer, unsampled) is unsampled
    assert recording.start_span(tracer, "child", unsampled) is unsampled
    assert recording.dropped_child(tracer, sampled) is None
    assert recording.dropped_child(tracer, remote) is None  # the sampler decides
    assert recording.dropped_child(tracer, INVALID_SPAN) is None  # a root
    # a root dropped by a tracer's sampler: its children are that same span
    off, _ = _provider(True, sampler=ParentBased(ALWAYS_OFF))
    off_tracer = off.get_tracer("t")
    root = recording.start_span(off_tracer, "root", INVALID_SPAN)
    assert not root.get_span_context().trace_flags.sampled
    assert recording.dropped_child(off_tracer, root) is root
    assert recording.start_span(off_tracer, "child", root) is root
    # under another tracer, the usual rules give a dropped span of the same context
    assert recording.dropped_child(tracer, root).get_span_context() == root.get_span_context()
    assert exporter.get_finished_spans() == ()


def test_a_processor_added_later_sees_the_next_spans() -> None:
    provider, exporter = _provider(True)
    tracer = provider.get_tracer("t")
    recording.start_span(tracer, "before", INVALID_SPAN).end()
    provider.add_span_processor(_UsersProcessor())
    assert recording._pipeline_for(tracer) is None  # the bot's processor: the SDK's path
    recording.start_span(tracer, "after", INVALID_SPAN).end()
    before, after = exporter.get_finished_spans()
    assert "seen.by.processor" not in (before.attributes or {})
    assert after.attributes["seen.by.processor"] is True


def test_our_spans_encode_to_the_stock_otlp_message() -> None:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import (
        encode_spans as stock_encode,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from discord_otel import otlp_encoding, span_fields

    provider, exporter = _provider(True)
    tracer = provider.get_tracer("discord_otel", "1.0")
    root = recording.start_span(
        tracer, "gateway MESSAGE_CREATE", INVALID_SPAN, SpanKind.CONSUMER, {"discord.shard.id": 0}
    )
    child = recording.start_span(tracer, "command ping", root, SpanKind.SERVER, {"a": "b"})
    recording.add_internal_event(child, "discord.interaction.ack", {"x": 1.5})
    child.set_status(Status(StatusCode.ERROR, "KeyError"))
    child.end()
    root.end()
    spans = exporter.get_finished_spans()
    assert span_fields.reads_fields_directly(recording.RecordingSpan)  # the cheap path
    fast = ExportTraceServiceRequest.FromString(
        otlp_encoding.encode_spans(spans).SerializeToString()
    )
    stock = ExportTraceServiceRequest.FromString(stock_encode(spans).SerializeToString())
    assert fast == stock
    assert len(fast.resource_spans[0].scope_spans[0].spans) == 2
