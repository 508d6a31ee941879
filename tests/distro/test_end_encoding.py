"""The instrumentation's spans encoded as they end (``otlp_encoding.end_encoder``).

Where the distro's span pipeline exports over OTLP/HTTP with discord-otel's encoder,
ending one of the instrumentation's spans encodes it at once and queues the
encoding instead of the span. What a user sees must not change: the same OTLP
request reaches the Collector (decoded here with opentelemetry-proto, against the
stock encoder's message for the same spans), secrets registered between a span's
end and its export are still redacted, nothing is lost when the encoder is
uninstalled with encodings queued, and any other pipeline gets the span itself."""

from __future__ import annotations

import gc
import logging
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode

from discord_otel import otlp_encoding, scrub
from discord_otel.instrumentation import recording
from discord_otel.pipeline import SafeSpanExporter, SignalCounts
from tests.fixtures.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.skipif(
    otlp_encoding._built is None, reason="discord_otel._otlp_speedups is not built here"
)


@pytest.fixture(autouse=True)
def _installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(trace_exporter, "encode_spans", stock_encode)
    monkeypatch.setattr(otlp_encoding, "speedups", otlp_encoding._built)
    otlp_encoding.clear_caches()
    otlp_encoding.install()
    yield
    otlp_encoding.uninstall()


class _Pipeline:
    """The distro's span pipeline in small: a batch processor (exporting only when
    flushed) over the counting, scrubbing wrapper and the real OTLP/HTTP exporter."""

    def __init__(self, receiver: OtlpReceiver) -> None:
        self.counts = SignalCounts("spans")
        inner = OTLPSpanExporter(endpoint=f"{receiver.http_endpoint}/v1/traces", timeout=10)
        self.processor = BatchSpanProcessor(
            SafeSpanExporter(inner, self.counts),
            schedule_delay_millis=600_000,
            max_export_batch_size=10_000,
            max_queue_size=10_000,
        )
        self.provider = TracerProvider(resource=Resource.create({"service.name": "bot"}))
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("discord_otel", "1.0")

    def queued(self) -> list[Any]:
        """What the processor holds, oldest first."""
        return list(reversed(self.processor._batch_processor._queue))

    def flush(self) -> None:
        assert self.processor.force_flush()

    def close(self) -> None:
        self.provider.shutdown()


@pytest.fixture
def pipeline(otlp_receiver: OtlpReceiver) -> Iterator[_Pipeline]:
    made = _Pipeline(otlp_receiver)
    yield made
    made.close()


def _command_tree(tracer: Any, note: str = "fine") -> list[Span]:
    """A command's spans as the instrumentation makes them, ended child first."""
    root = recording.start_span(
        tracer,
        "gateway INTERACTION_CREATE",
        INVALID_SPAN,
        SpanKind.CONSUMER,
        {"discord.gateway.event": "INTERACTION_CREATE", "discord.shard.id": 0},
    )
    command = recording.start_span(
        tracer, "command ping", root, SpanKind.SERVER, {"discord.command.name": "ping"}
    )
    rest = recording.start_span(
        tracer,
        "POST /interactions/{interaction_id}/{interaction_token}/callback",
        command,
        SpanKind.CLIENT,
        {"http.request.method": "POST", "note": note},
    )
    recording.set_internal(rest, "http.response.status_code", 204)
    recording.add_internal_event(command, "discord.interaction.ack", {"seconds": 0.25})
    command.set_status(Status(StatusCode.ERROR, "KeyError"))
    spans = [rest, command, root]
    for span in spans:
        span.end()
    return spans


def _received(receiver: OtlpReceiver) -> ExportTraceServiceRequest:
    receiver.wait_for(lambda r: r.trace_requests, what="a trace request")
    return receiver.trace_requests[-1]


def _expected(spans: list[Any]) -> ExportTraceServiceRequest:
    scrubbed = [scrub.scrub_span(span) for span in spans]
    return ExportTraceServiceRequest.FromString(stock_encode(scrubbed).SerializePartialToString())


def test_our_spans_are_queued_encoded_and_reach_the_collector_unchanged(
    pipeline: _Pipeline, otlp_receiver: OtlpReceiver
) -> None:
    spans = _command_tree(pipeline.tracer)
    queued = pipeline.queued()
    # the failed command's span (a status description to scrub) is left to the
    # export thread's encoder, as the compiled half leaves it
    assert [otlp_encoding.is_encoded(item) for item in queued] == [True, False, True]
    pipeline.flush()
    assert _received(otlp_receiver) == _expected(spans)
    names = [span.name for span in otlp_receiver.spans()]
    assert sorted(names) == sorted(span.name for span in spans)  # type: ignore[attr-defined]
    assert pipeline.counts.exported == 3
    assert pipeline.counts.dropped == 0


def test_the_queue_no_longer_holds_the_spans(pipeline: _Pipeline) -> None:
    spans = _command_tree(pipeline.tracer)
    alive = [weakref.ref(span) for span in spans]
    del spans
    gc.collect()
    assert [ref() is None for ref in alive] == [True, False, True]  # as queued above
    assert len(pipeline.queued()) == 3


def test_a_secret_registered_between_end_and_export_is_redacted(
    pipeline: _Pipeline, otlp_receiver: OtlpReceiver
) -> None:
    secret = "secret-registered-after-end-0c51d7"
    spans = _command_tree(pipeline.tracer, note=f"uses {secret}")
    assert otlp_encoding.is_encoded(pipeline.queued()[0])  # the REST span, holding the secret
    scrub.register_secret(secret)
    pipeline.flush()
    with otlp_receiver._lock:
        payloads = list(otlp_receiver.raw)
    assert payloads
    assert not any(secret.encode() in payload for payload in payloads)
    assert _received(otlp_receiver) == _expected(spans)


def test_spans_the_encoder_declines_are_queued_as_they_are(
    pipeline: _Pipeline, otlp_receiver: OtlpReceiver
) -> None:
    root = recording.start_span(pipeline.tracer, "task tick", INVALID_SPAN)
    linked = recording.start_span(
        pipeline.tracer, "component button", INVALID_SPAN, links=[Link(root.get_span_context())]
    )
    root.end()
    linked.end()
    queued = pipeline.queued()
    assert [otlp_encoding.is_encoded(item) for item in queued] == [True, False]
    assert queued[0] is not root
    assert queued[1] is linked
    pipeline.flush()
    assert _received(otlp_receiver) == _expected([root, linked])


def test_the_fallback_sends_queued_encodings_too(
    pipeline: _Pipeline, otlp_receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spans: Any) -> bytes:
        raise RuntimeError("fast path broken")

    spans = _command_tree(pipeline.tracer)
    monkeypatch.setattr(otlp_encoding, "_encode", broken)
    pipeline.flush()
    received = _received(otlp_receiver)
    by_name = {
        span.name: span
        for rs in received.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    }
    expected = {
        span.name: span
        for rs in _expected(spans).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    }
    assert by_name == expected
    assert {rs.resource.SerializeToString() for rs in received.resource_spans} == {
        rs.resource.SerializeToString() for rs in _expected(spans).resource_spans
    }


def test_uninstalling_stops_encoding_and_counts_what_was_left(
    pipeline: _Pipeline, otlp_receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    first = _command_tree(pipeline.tracer)  # two encoded, then stranded by the uninstall
    otlp_encoding.uninstall()
    later = _command_tree(pipeline.tracer)
    encoded = [otlp_encoding.is_encoded(item) for item in pipeline.queued()]
    assert encoded == [True, False, True, False, False, False]
    with caplog.at_level(logging.WARNING, logger="discord_otel.pipeline"):
        pipeline.flush()
    assert _received(otlp_receiver) == _expected([first[1], *later])
    assert pipeline.counts.export_failed == 2
    assert pipeline.counts.exported == 4
    assert "2 spans encoded before the OTLP encoder was uninstalled" in caplog.text


@pytest.mark.parametrize("kind", ["simple", "batch to memory"])
def test_other_pipelines_get_the_span_itself(kind: str) -> None:
    memory = InMemorySpanExporter()
    processor: Any = (
        SimpleSpanProcessor(memory)
        if kind == "simple"
        else BatchSpanProcessor(memory, schedule_delay_millis=600_000)
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    try:
        spans = _command_tree(provider.get_tracer("discord_otel"))
        if kind == "batch to memory":
            assert processor._batch_processor._queue[-1] is spans[0]
        provider.force_flush()
        finished: list[ReadableSpan] = list(memory.get_finished_spans())
        assert finished == spans
    finally:
        provider.shutdown()


def test_no_encoder_where_the_compiled_half_is_off() -> None:
    """Switched off (``OTEL_PYTHON_DISCORD_COMPILED=false``, or not built): the span
    itself is queued, for the pure-Python encoder."""
    assert otlp_encoding.end_encoder(lambda item: None) is not None
    otlp_encoding.install(compiled=False)
    assert otlp_encoding.end_encoder(lambda item: None) is None
    exporter = OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    processor = BatchSpanProcessor(
        SafeSpanExporter(exporter, SignalCounts("spans")), schedule_delay_millis=600_000
    )
    provider = TracerProvider()
    provider.add_span_processor(processor)
    spans = _command_tree(provider.get_tracer("discord_otel"))
    queue = processor._batch_processor._queue
    assert list(queue) == spans[::-1]  # newest first
    queue.clear()  # nothing to send to that port
    provider.shutdown()
