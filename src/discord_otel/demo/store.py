"""What the live view shows, collected in process.

* :class:`SpanStore` is a span processor: it keeps the latest traces (a bounded
  number) and counts spans;
* :class:`LogStore` is a log record processor: it keeps the latest log lines
  with their trace ids;
* :class:`MetricStore` reads the metrics through an
  :class:`~opentelemetry.sdk.metrics.export.InMemoryMetricReader` of its own,
  once a second, and keeps a minute of snapshots to compute rates and
  percentiles over a window, as a dashboard would.

The processors run where spans end and records are made (the event loop), so
they only copy a few fields under a lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.metrics.export import (
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

MAX_TRACES = 200
MAX_LOGS = 200
# Seconds without a new span before a trace counts as finished (listeners run in
# their own tasks, so a trace's root can end before its children).
TRACE_SETTLE = 0.3
RECENT_TRACES = 50
HANDLER_PREFIXES = ("command ", "component ", "modal ", "autocomplete ")


@dataclass(frozen=True)
class SpanRecord:
    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    error_type: str | None

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass
class TraceRecord:
    trace_id: int
    spans: list[SpanRecord] = field(default_factory=list)
    updated: float = 0.0

    @property
    def interesting(self) -> bool:
        """Carries a command, component, modal or autocomplete span."""
        return any(span.name.startswith(HANDLER_PREFIXES) for span in self.spans)

    @property
    def failed(self) -> bool:
        return any(span.error_type for span in self.spans)

    @property
    def root_name(self) -> str:
        """The first root span's name (``gateway INTERACTION_CREATE``...), or ''."""
        roots, _ = self.children()
        return roots[0].name if roots else ""

    def children(self) -> tuple[list[SpanRecord], dict[int, list[SpanRecord]]]:
        """The trace's roots (spans without a parent in it) and each span's children."""
        ids = {span.span_id for span in self.spans}
        roots: list[SpanRecord] = []
        children: dict[int, list[SpanRecord]] = {}
        for span in sorted(self.spans, key=lambda s: s.start_ns):
            if span.parent_id is None or span.parent_id not in ids:
                roots.append(span)
            else:
                children.setdefault(span.parent_id, []).append(span)
        return roots, children


def _error_type(span: ReadableSpan) -> str | None:
    attributes = span.attributes or {}
    value = attributes.get("error.type")
    if value is not None:
        return str(value)
    if span.status.status_code is StatusCode.ERROR:
        return "error"
    return None


class SpanStore(SpanProcessor):
    """Keeps the latest traces and counts spans (a span processor)."""

    def __init__(self, max_traces: int = MAX_TRACES) -> None:
        self._lock = threading.Lock()
        self._traces: OrderedDict[int, TraceRecord] = OrderedDict()
        self._max = max_traces
        self.spans = 0
        self.error_spans = 0
        self.trace_ids: set[int] = set()
        self.names: Counter[str] = Counter()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        record = SpanRecord(
            name=span.name,
            trace_id=context.trace_id,
            span_id=context.span_id,
            parent_id=span.parent.span_id if span.parent is not None else None,
            start_ns=span.start_time or 0,
            end_ns=span.end_time or 0,
            error_type=_error_type(span),
        )
        with self._lock:
            self.spans += 1
            self.error_spans += record.error_type is not None
            self.trace_ids.add(record.trace_id)
            self.names[_kind_of(record.name)] += 1
            trace = self._traces.get(record.trace_id)
            if trace is None:
                trace = self._traces[record.trace_id] = TraceRecord(record.trace_id)
                while len(self._traces) > self._max:
                    self._traces.popitem(last=False)
            else:
                self._traces.move_to_end(record.trace_id)
            trace.spans.append(record)
            trace.updated = time.monotonic()

    def latest(self, count: int, *, settle: float = TRACE_SETTLE) -> list[TraceRecord]:
        """The ``count`` most recently finished traces, preferring those that ran a
        command, component, modal or autocomplete, and different kinds of them (a
        slash command's tree beside a prefix command's); newest first."""
        now = time.monotonic()
        with self._lock:
            done = [t for t in reversed(self._traces.values()) if now - t.updated >= settle]
            recent = done[:RECENT_TRACES]
            # A recent failure, then the newest handler traces (deeper ones first), then any.
            failed = [t for t in recent if t.interesting and t.failed][:1]
            deep = [t for t in recent if t.interesting and len(t.spans) >= 3]
            roots_shown = {t.root_name for t in failed}
            varied = []
            for trace in deep:
                if trace.root_name not in roots_shown:
                    roots_shown.add(trace.root_name)
                    varied.append(trace)
            others = [t for t in recent if t.interesting] + done
            chosen: list[TraceRecord] = []
            for trace in failed + varied + deep + others:
                if len(chosen) >= count:
                    break
                if trace not in chosen:
                    chosen.append(trace)
            return [TraceRecord(t.trace_id, list(t.spans), t.updated) for t in chosen]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _kind_of(name: str) -> str:
    """A span name's kind, for counting: ``command``, ``gateway``, ``POST``..."""
    return name.split(" ", 1)[0]


@dataclass(frozen=True)
class LogLine:
    at: float  # unix time
    level: str
    logger: str
    body: str
    trace_id: int


class LogStore(LogRecordProcessor):
    """Keeps the latest log lines with their trace ids (a log record processor)."""

    def __init__(self, max_lines: int = MAX_LOGS) -> None:
        self._lock = threading.Lock()
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self.records = 0
        self.with_trace_id = 0
        self.levels: Counter[str] = Counter()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        record = log_record.log_record
        scope = log_record.instrumentation_scope
        timestamp = record.timestamp or record.observed_timestamp or time.time_ns()
        line = LogLine(
            at=timestamp / 1e9,
            level=record.severity_text or "",
            logger=scope.name if scope is not None else "",
            body=str(record.body),
            trace_id=record.trace_id or 0,
        )
        with self._lock:
            self.records += 1
            self.with_trace_id += bool(line.trace_id)
            self.levels[line.level] += 1
            self._lines.append(line)

    def latest(self, count: int) -> list[LogLine]:
        with self._lock:
            return list(self._lines)[-count:]

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


# --- metrics -------------------------------------------------------------------


@dataclass
class HistogramSeries:
    count: int = 0
    total: float = 0.0
    bounds: tuple[float, ...] = ()
    buckets: list[int] = field(default_factory=list)

    def add(self, point: HistogramDataPoint) -> None:
        self.count += point.count
        self.total += point.sum
        bounds = tuple(point.explicit_bounds)
        if not self.buckets:
            self.bounds = bounds
            self.buckets = [0] * len(point.bucket_counts)
        elif self.bounds != bounds:  # other bounds: count it, leave the buckets alone
            return
        for index, value in enumerate(point.bucket_counts):
            self.buckets[index] += value

    def minus(self, earlier: HistogramSeries | None) -> HistogramSeries:
        if earlier is None or earlier.bounds != self.bounds or not earlier.buckets:
            return self
        return HistogramSeries(
            self.count - earlier.count,
            self.total - earlier.total,
            self.bounds,
            [a - b for a, b in zip(self.buckets, earlier.buckets, strict=False)],
        )

    def quantile(self, q: float) -> float | None:
        """Like PromQL's ``histogram_quantile``: linear within the bucket."""
        total = sum(self.buckets)
        if total <= 0 or not self.bounds:
            return None
        rank = q * total
        seen = 0
        for index, count in enumerate(self.buckets):
            if seen + count >= rank and count > 0:
                if index >= len(self.bounds):  # the +Inf bucket
                    return self.bounds[-1]
                lower = self.bounds[index - 1] if index > 0 else 0.0
                upper = self.bounds[index]
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return self.bounds[-1]


@dataclass
class MetricSnapshot:
    """The instruments the view shows, summed over the attributes it does not."""

    at: float
    commands: Counter[tuple[str, str]] = field(default_factory=Counter)  # (name, outcome)
    command_errors: Counter[str] = field(default_factory=Counter)  # error.type
    command_latency: HistogramSeries = field(default_factory=HistogramSeries)
    components: int = 0
    ack_latency: HistogramSeries = field(default_factory=HistogramSeries)
    rest_calls: Counter[str] = field(default_factory=Counter)  # "METHOD /template"
    rest_errors: Counter[str] = field(default_factory=Counter)
    rest_latency: dict[str, HistogramSeries] = field(default_factory=dict)
    ratelimits: Counter[str] = field(default_factory=Counter)  # "/template scope"
    gateway_events: Counter[str] = field(default_factory=Counter)
    loop_lag: float | None = None
    instruments: set[str] = field(default_factory=set)

    @property
    def command_total(self) -> int:
        return sum(self.commands.values())

    @property
    def command_error_total(self) -> int:
        return sum(n for (_, outcome), n in self.commands.items() if outcome == "error")


def _attr(attributes: Mapping[str, Any] | None, name: str, default: str = "") -> str:
    value = (attributes or {}).get(name)
    return default if value is None else str(value)


def snapshot_from(metrics: Iterable[Any], at: float) -> MetricSnapshot:
    """A :class:`MetricSnapshot` from the SDK's metrics (``Metric`` objects)."""
    snap = MetricSnapshot(at=at)
    for metric in metrics:
        snap.instruments.add(metric.name)
        points: Sequence[Any] = getattr(metric.data, "data_points", ())
        for point in points:
            _add_point(snap, metric.name, point, isinstance(metric.data, Histogram))
    return snap


def _add_point(snap: MetricSnapshot, name: str, point: Any, histogram: bool) -> None:
    attrs = point.attributes
    if name == "discord.command.duration" and histogram:
        outcome = _attr(attrs, "discord.command.outcome", "success")
        snap.commands[(_attr(attrs, "discord.command.name", "?"), outcome)] += point.count
        error = _attr(attrs, "error.type")
        if error:
            snap.command_errors[error] += point.count
        snap.command_latency.add(point)
    elif name == "discord.component.duration" and histogram:
        snap.components += point.count
    elif name == "discord.interaction.ack.duration" and histogram:
        snap.ack_latency.add(point)
    elif name == "discord.rest.request.duration" and histogram:
        route = f"{_attr(attrs, 'http.request.method', '?')} {_attr(attrs, 'url.template', '?')}"
        snap.rest_calls[route] += point.count
        status = _attr(attrs, "http.response.status_code")
        if _attr(attrs, "error.type") or (status.isdigit() and int(status) >= 400):
            snap.rest_errors[route] += point.count
        snap.rest_latency.setdefault(route, HistogramSeries()).add(point)
    elif name == "discord.rest.ratelimits" and isinstance(point, NumberDataPoint):
        key = f"{_attr(attrs, 'url.template', '?')} {_attr(attrs, 'discord.ratelimit.scope')}"
        snap.ratelimits[key.strip()] += int(point.value)
    elif name == "discord.gateway.events" and isinstance(point, NumberDataPoint):
        snap.gateway_events[_attr(attrs, "discord.gateway.event", "?")] += int(point.value)
    elif name == "asyncio.event_loop.lag" and isinstance(point, NumberDataPoint):
        snap.loop_lag = max(snap.loop_lag or 0.0, float(point.value))


class MetricStore:
    """Reads the metrics once a second and keeps a window of snapshots."""

    def __init__(self, window: float = 60.0) -> None:
        self.reader = InMemoryMetricReader()
        self.window = window
        self._history: deque[MetricSnapshot] = deque()
        self.first: MetricSnapshot | None = None

    def collect(self) -> MetricSnapshot:
        now = time.monotonic()
        try:
            data = self.reader.get_metrics_data()
        except Exception:  # after shutdown, or a failing callback: keep the last one
            return self._history[-1] if self._history else MetricSnapshot(at=now)
        metrics = [
            metric
            for resource in (data.resource_metrics if data is not None else [])
            for scope in resource.scope_metrics
            for metric in scope.metrics
        ]
        snap = snapshot_from(metrics, now)
        if self.first is None:
            self.first = snap
        self._history.append(snap)
        while self._history and now - self._history[0].at > self.window:
            self._history.popleft()
        return snap

    @property
    def latest(self) -> MetricSnapshot | None:
        return self._history[-1] if self._history else None

    def ago(self, seconds: float) -> MetricSnapshot | None:
        """The oldest kept snapshot at most ``seconds`` old (for rates)."""
        if not self._history:
            return None
        newest = self._history[-1].at
        for snap in self._history:
            if newest - snap.at <= seconds:
                return snap
        return self._history[-1]
