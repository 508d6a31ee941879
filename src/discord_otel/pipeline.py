"""The export pipeline discord-otel builds: bounded, counted, scrubbed, and shut
down within a fixed time.

* Span and log batch processors have bounded queues (the SDK's
  ``OTEL_BSP_MAX_QUEUE_SIZE`` / ``OTEL_BLRP_MAX_QUEUE_SIZE``, 2048 by default);
  what they drop is counted here, not logged per item.
* Every exporter is wrapped: spans are scrubbed of Discord secrets before they
  leave the process, and each export's outcome is counted.
* :meth:`TelemetryPipeline.shutdown` flushes and shuts the three providers down
  in parallel threads and returns after at most ``timeout`` seconds, even when
  the Collector is down or never answers, then reports once what was lost.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from discord_otel.scrub import scrub_span

try:  # the batch processor behind the SDK's span and log processors (private)
    from opentelemetry.sdk._shared_internal import BatchProcessor as _SdkBatchProcessor
except ImportError:  # another SDK version: its own emit is used
    _SdkBatchProcessor = None  # type: ignore[assignment,misc]

logger = logging.getLogger(__name__)


@dataclass
class SignalCounts:
    """What happened to one signal's items (spans, log records or metric exports)."""

    signal: str
    exported: int = 0
    export_failed: int = 0
    queue_full: int = 0
    after_shutdown: int = 0
    left_in_queue: int = 0
    in_flight: int = 0  # handed to the exporter, no answer yet
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def outcome(self, name: str, count: int) -> None:
        """An export of ``count`` items finished (``exported`` or ``export_failed``)."""
        with self._lock:
            self.in_flight -= count
            setattr(self, name, getattr(self, name) + count)

    @property
    def dropped(self) -> int:
        return (
            self.export_failed
            + self.queue_full
            + self.after_shutdown
            + self.left_in_queue
            + self.in_flight
        )

    def describe(self) -> str:
        parts = [
            f"{value} {label}"
            for value, label in (
                (self.queue_full, "queue full"),
                (self.export_failed, "export failed"),
                (self.left_in_queue, "left in queue at shutdown"),
                (self.in_flight, "still being exported at shutdown"),
                (self.after_shutdown, "after shutdown"),
            )
            if value
        ]
        return f"{self.dropped} {self.signal} ({', '.join(parts)})"


class _CountingProcessorMetrics:
    """Stands in for the batch processor's self-metrics hook to count drops."""

    def __init__(self, inner: Any, counts: SignalCounts) -> None:
        self._inner = inner
        self._counts = counts

    def register_queue_size(self, get_queue_size: Callable[[], int]) -> None:
        self._inner.register_queue_size(get_queue_size)

    def drop_items(self, count: int, error_type: str = "queue_full") -> None:
        self._counts.add(
            "after_shutdown" if error_type == "already_shutdown" else "queue_full", count
        )
        self._inner.drop_items(count, error_type)

    def finish_items(self, count: int) -> None:
        self._inner.finish_items(count)


def _count_batch_processor(processor: Any, counts: SignalCounts) -> None:
    batch = getattr(processor, "_batch_processor", None)
    if batch is not None and hasattr(batch, "_metrics"):
        batch._metrics = _CountingProcessorMetrics(batch._metrics, counts)


def _queue_length(processor: Any) -> int:
    batch = getattr(processor, "_batch_processor", None)
    queue = getattr(batch, "_queue", None)
    return len(queue) if queue is not None else 0


def queue_emitter(batch: Any) -> Callable[[Any], None]:
    """What puts an ended span in ``batch``'s queue (``batch`` being a batch span
    processor's ``_batch_processor``): its ``emit``; or, where the compiled half
    is in use and ``batch`` is the SDK's own ``BatchProcessor`` as this version
    knows it, the same without the ``getpid()`` system call ``emit`` makes per
    item (``QueueEmit`` in _otlp_speedups.c)."""
    emit: Callable[[Any], None] = batch.emit
    encoding = sys.modules.get("discord_otel.otlp_encoding")
    compiled = getattr(encoding, "speedups", None)
    if compiled is None or _SdkBatchProcessor is None or type(batch) is not _SdkBatchProcessor:
        return emit
    queue = getattr(batch, "_queue", None)
    max_queue_size = getattr(batch, "_max_queue_size", None)
    max_batch = getattr(batch, "_max_export_batch_size", None)
    if (
        type(queue) is not collections.deque
        or type(max_queue_size) is not int
        or queue.maxlen != max_queue_size
        or type(max_batch) is not int
        or type(getattr(batch, "_shutdown", None)) is not bool
        or not hasattr(batch, "_worker_awaken")
    ):
        return emit
    return compiled.QueueEmit(batch, queue, max_queue_size, max_batch)  # type: ignore[no-any-return]


def _encodes_scrubbed(exporter: SpanExporter) -> bool:
    """Whether ``exporter`` encodes with discord-otel's OTLP encoder, which redacts
    secrets as it encodes (otlp_encoding.py; imported only where it is used)."""
    encoding = sys.modules.get("discord_otel.otlp_encoding")
    return encoding is not None and bool(encoding.scrubs(exporter))


class SafeSpanExporter(SpanExporter):
    """Scrubs secrets from spans and counts what was exported."""

    def __init__(self, inner: SpanExporter, counts: SignalCounts) -> None:
        self.inner = inner
        self._counts = counts

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._counts.add("in_flight", len(spans))
        if not _encodes_scrubbed(self.inner):  # else its encoder scrubs as it encodes
            spans = [scrub_span(span) for span in self._readable(spans)]
        try:
            result = self.inner.export(spans)
        except Exception:
            self._counts.outcome("export_failed", len(spans))
            raise
        self._counts.outcome(
            "exported" if result is SpanExportResult.SUCCESS else "export_failed", len(spans)
        )
        return result

    def _readable(self, spans: Sequence[ReadableSpan]) -> Sequence[ReadableSpan]:
        """``spans`` without the encodings made as spans ended (see
        :meth:`end_call`), which only discord-otel's encoder can send: they are
        left over from before it was uninstalled, and counted as failed."""
        encoding = sys.modules.get("discord_otel.otlp_encoding")
        if encoding is None:
            return spans
        readable = [span for span in spans if not encoding.is_encoded(span)]
        lost = len(spans) - len(readable)
        if lost:
            self._counts.outcome("export_failed", lost)
            logger.warning(
                "discord-otel: %d spans encoded before the OTLP encoder was uninstalled "
                "could not be exported",
                lost,
            )
        return readable

    def end_call(self, emit: Callable[[Any], None]) -> Callable[[Any], None] | None:
        """What a batch processor exporting here should call with each of the
        instrumentation's spans as it ends, in place of its ``emit``: the span
        encoded at once (``otlp_encoding.end_encoder``), where this exporter's
        encoder is discord-otel's; else None."""
        encoding = sys.modules.get("discord_otel.otlp_encoding")
        if encoding is None or not _encodes_scrubbed(self.inner):
            return None
        return encoding.end_encoder(emit)  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingLogExporter(LogRecordExporter):
    """Counts what was exported (log bodies are scrubbed by the logging handler)."""

    def __init__(self, inner: LogRecordExporter, counts: SignalCounts) -> None:
        self.inner = inner
        self._counts = counts

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        self._counts.add("in_flight", len(batch))
        try:
            result = self.inner.export(batch)
        except Exception:
            self._counts.outcome("export_failed", len(batch))
            raise
        self._counts.outcome(
            "exported" if result is LogRecordExportResult.SUCCESS else "export_failed", len(batch)
        )
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingMetricExporter(MetricExporter):
    """Counts metric exports (each a full collection) that succeeded or failed."""

    def __init__(self, inner: MetricExporter, counts: SignalCounts) -> None:
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self._counts = counts

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self._counts.add("in_flight", 1)
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            self._counts.outcome("export_failed", 1)
            raise
        self._counts.outcome(
            "exported" if result is MetricExportResult.SUCCESS else "export_failed", 1
        )
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


@dataclass(frozen=True)
class ShutdownReport:
    seconds: float
    timed_out: tuple[str, ...]
    counts: tuple[SignalCounts, ...]

    @property
    def dropped(self) -> int:
        return sum(c.dropped for c in self.counts)

    def describe(self) -> str:
        lost = [c.describe() for c in self.counts if c.dropped]
        text = f"discord-otel: telemetry shut down in {self.seconds:.1f}s"
        if self.timed_out:
            text += f" (gave up waiting for: {', '.join(self.timed_out)})"
        if lost:
            text += "; not delivered: " + "; ".join(lost)
        else:
            text += "; nothing was dropped"
        return text


class TelemetryPipeline:
    """The providers discord-otel configured, and their bounded shutdown."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        logger_provider: LoggerProvider,
        *,
        span_processors: Sequence[BatchSpanProcessor] = (),
        log_processors: Sequence[BatchLogRecordProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
        counts: Sequence[SignalCounts] = (),
        shutdown_timeout: float = 5.0,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.span_processors = tuple(span_processors)
        self.log_processors = tuple(log_processors)
        self.metric_readers = tuple(metric_readers)
        self.counts = {c.signal: c for c in counts}
        self.shutdown_timeout = shutdown_timeout
        self._lock = threading.Lock()
        self._report: ShutdownReport | None = None
        self._before_shutdown: list[Callable[[], None]] = []

    def call_before_shutdown(self, callback: Callable[[], None]) -> None:
        self._before_shutdown.append(callback)

    @property
    def is_shut_down(self) -> bool:
        return self._report is not None

    def queue_lengths(self) -> dict[str, int]:
        return {
            "spans": sum(_queue_length(p) for p in self.span_processors),
            "logs": sum(_queue_length(p) for p in self.log_processors),
        }

    def shutdown(self, timeout: float | None = None) -> ShutdownReport:
        """Flush and shut down all three providers within ``timeout`` seconds.

        Idempotent: later calls return the first call's report. Never raises."""
        with self._lock:
            if self._report is not None:
                return self._report
            budget = self.shutdown_timeout if timeout is None else timeout
            started = time.monotonic()
            deadline = started + budget
            for callback in self._before_shutdown:
                try:
                    callback()
                except Exception:
                    logger.debug("discord-otel: a pre-shutdown callback failed", exc_info=True)
            millis = int(budget * 1000)
            # The three providers shut down in parallel: each gets the whole
            # budget, and the deadline bounds the total.
            tasks: dict[str, Callable[[], None]] = {
                "traces": lambda: self.tracer_provider.shutdown(),
                "metrics": lambda: self.meter_provider.shutdown(timeout_millis=millis),
                "logs": lambda: self.logger_provider.shutdown(),
            }
            threads = {
                name: threading.Thread(
                    target=_quietly(task), name=f"discord-otel-shutdown-{name}", daemon=True
                )
                for name, task in tasks.items()
            }
            for thread in threads.values():
                thread.start()
            timed_out: list[str] = []
            for name, thread in threads.items():
                thread.join(max(0.0, deadline - time.monotonic()))
                if thread.is_alive():
                    timed_out.append(name)
            for processor in self.span_processors:
                self._count_left("spans", processor)
            for log_processor in self.log_processors:
                self._count_left("log records", log_processor)
            report = ShutdownReport(
                seconds=time.monotonic() - started,
                timed_out=tuple(timed_out),
                counts=tuple(self.counts.values()),
            )
            self._report = report
        level = logging.WARNING if report.dropped or report.timed_out else logging.INFO
        logger.log(level, "%s", report.describe())
        return report

    def _count_left(self, signal: str, processor: Any) -> None:
        counts = self.counts.get(signal)
        left = _queue_length(processor)
        if counts is not None and left:
            counts.add("left_in_queue", left)


def _quietly(task: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            task()
        except Exception:
            logger.debug("discord-otel: a provider failed to shut down", exc_info=True)

    return run
