"""Ended spans are queued without a system call each (``pipeline.queue_emitter``).

The SDK's batch processor asks ``os.getpid()`` for every item it queues; the
compiled ``QueueEmit`` queues the same way without it. Everything a user could
see must be the same as through the SDK's own ``emit``: the queue's order, the
drops counted when it is full or shut down, and the export that starts as soon
as a batch is ready.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from discord_otel import otlp_encoding
from discord_otel.pipeline import SignalCounts, _count_batch_processor, queue_emitter

pytestmark = pytest.mark.skipif(
    otlp_encoding._built is None, reason="discord_otel._otlp_speedups is not built here"
)


@pytest.fixture(autouse=True)
def _compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_encoding, "speedups", otlp_encoding._built)


class _Processor:
    """A batch span processor with its drops counted, as the distro builds it."""

    def __init__(self, max_queue_size: int = 100, max_export_batch_size: int = 100) -> None:
        self.exporter = InMemorySpanExporter()
        self.processor = BatchSpanProcessor(
            self.exporter,
            schedule_delay_millis=600_000,
            max_queue_size=max_queue_size,
            max_export_batch_size=max_export_batch_size,
        )
        self.counts = SignalCounts("spans")
        _count_batch_processor(self.processor, self.counts)
        self.batch: Any = self.processor._batch_processor

    def queued(self) -> list[Any]:
        return list(self.batch._queue)

    def close(self) -> None:
        self.processor.shutdown()


@pytest.fixture
def spans() -> Iterator[list[Any]]:
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    made = []
    for index in range(8):
        span = tracer.start_span(f"span {index}")
        span.end()
        made.append(span)
    yield made
    provider.shutdown()


def _both(**sizes: int) -> tuple[_Processor, _Processor]:
    return _Processor(**sizes), _Processor(**sizes)


def test_the_sdks_batch_processor_gets_the_compiled_emitter() -> None:
    processor = _Processor()
    try:
        emit = queue_emitter(processor.batch)
        assert type(emit).__name__ == "QueueEmit"
    finally:
        processor.close()


def test_items_are_queued_as_emit_queues_them(spans: list[Any]) -> None:
    sdk, ours = _both()
    try:
        emit = queue_emitter(ours.batch)
        for span in spans:
            sdk.batch.emit(span)
            emit(span)
        assert ours.queued() == sdk.queued()
        assert ours.queued()[0] is spans[-1]  # newest on the left, as the SDK keeps them
    finally:
        sdk.close()
        ours.close()


def test_a_full_queue_drops_and_counts_as_emit_does(spans: list[Any]) -> None:
    sdk, ours = _both(max_queue_size=5, max_export_batch_size=5)
    try:
        sdk.batch._worker_awaken.set = lambda: None  # hold the export threads back
        ours.batch._worker_awaken.set = lambda: None
        emit = queue_emitter(ours.batch)
        for span in spans:
            sdk.batch.emit(span)
            emit(span)
        assert ours.queued() == sdk.queued()
        assert len(ours.queued()) == 5
        assert ours.counts.queue_full == sdk.counts.queue_full == 3
    finally:
        del sdk.batch._worker_awaken.set, ours.batch._worker_awaken.set
        sdk.close()
        ours.close()


def test_after_shutdown_nothing_is_queued_and_it_is_counted(spans: list[Any]) -> None:
    sdk, ours = _both()
    emit = queue_emitter(ours.batch)
    sdk.close()
    ours.close()
    sdk.batch.emit(spans[0])
    emit(spans[0])
    assert ours.queued() == sdk.queued() == []
    assert ours.counts.after_shutdown == sdk.counts.after_shutdown == 1


def test_a_full_batch_is_exported_without_waiting_for_the_schedule(spans: list[Any]) -> None:
    ours = _Processor(max_export_batch_size=4)
    try:
        emit = queue_emitter(ours.batch)
        for span in spans[:4]:
            emit(span)
        deadline = time.monotonic() + 30  # the schedule is 10 minutes away
        while len(ours.exporter.get_finished_spans()) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [s.name for s in ours.exporter.get_finished_spans()] == [
            f"span {index}" for index in range(4)
        ]
    finally:
        ours.close()


def test_another_batch_processor_keeps_its_own_emit() -> None:
    processor = _Processor()

    class Custom(type(processor.batch)):  # type: ignore[misc]
        pass

    try:
        processor.batch.__class__ = Custom
        assert queue_emitter(processor.batch) == processor.batch.emit
    finally:
        processor.close()


def test_no_compiled_emitter_where_the_compiled_half_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(otlp_encoding, "speedups", None)
    processor = _Processor()
    try:
        assert queue_emitter(processor.batch) == processor.batch.emit
    finally:
        processor.close()
