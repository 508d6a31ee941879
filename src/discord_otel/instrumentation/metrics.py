"""The discord.* instruments, created once per ``instrument()``.

Hot-path rules:

- Counting a gateway event is one integer increment in a cell owned by the
  ``(event, shard)`` pair; an observable counter reports the cells at
  collection time.
- An SDK ``Histogram.record`` costs ~4-5 us here, more than 15% of discord.py's
  own handling of a message, so per-listener (and metrics-only command and
  component) durations are aggregated in process by :class:`FastHistogram`
  (a bucket increment on precomputed attributes) and merged into the SDK's
  aggregation when a reader collects.
- Exemplars: the SDK's reservoir for explicit-bucket histograms keeps one
  exemplar per bucket per collection, so per series only the first duration
  recorded under a sampled span in each bucket since the last collection goes
  through the SDK ``record`` with that span's context (and becomes the
  bucket's exemplar, pointing at the trace); every other one, sampled or not,
  is aggregated in process. The marks are cleared at each collection, so every
  interval can carry fresh exemplars. At 100% sampling this keeps the ~8 us
  SDK path (with exemplar) off all but a handful of observations per interval.
- Gauges (latency, connection, guilds, users, rate-limit remaining, task last
  success, event loop lag) are read from tracked clients and plain dicts at
  collection time; nothing walks caches on the hot path.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import discord
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation
from opentelemetry.trace import Span

from discord_otel import semconv
from discord_otel.instrumentation import clients
from discord_otel.instrumentation.recording import NON_RECORDING_TYPES
from discord_otel.instrumentation.safety import report

AttributeDict = dict[str, Any]


class FastHistogram:
    """A histogram whose observations are aggregated in process (see module docstring)."""

    def __init__(self, instrument: Histogram, bounds: Sequence[float]) -> None:
        self.instrument = instrument
        self.bounds = tuple(float(b) for b in bounds)
        self._series: dict[Any, _Series] = {}

    def series(self, key: Any, attributes: AttributeDict) -> _Series:
        """The accumulator of one bounded attribute set (create once, keep it)."""
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = _Series(attributes, len(self.bounds) + 1)
        return found

    def known(self, *key: Any) -> _Series | None:
        """The accumulator of ``key`` if :meth:`series` made it already."""
        return self._series.get(key)

    def record(self, series: _Series, value: float, span: Span | None = None) -> None:
        bucket = bisect_left(self.bounds, value)  # the SDK's bucket: value <= bound
        if (
            span is not None
            and not series.exemplars[bucket]
            and type(span) not in NON_RECORDING_TYPES  # sampled out: no call needed to tell
            and span.get_span_context().trace_flags.sampled
        ):
            # The bucket has no exemplar this interval: this observation gives it one.
            series.exemplars[bucket] = True
            self.instrument.record(
                value, series.attributes, context=trace.set_span_in_context(span)
            )
            return
        series.counts[bucket] += 1
        series.total += value
        if value < series.low:
            series.low = value
        if value > series.high:
            series.high = value

    def flush(self) -> None:
        """Merge the in-process counts into the SDK; called as a reader collects."""
        for series in list(self._series.values()):
            # This collection empties the SDK's reservoirs: every bucket may take a
            # new exemplar, also in series with nothing to merge. One store, as
            # record() runs on the event loop's thread, this on the reader's.
            series.exemplars = [False] * len(series.counts)
            try:
                self._flush_series(series)
            except Exception:
                report("histogram flush")

    def _flush_series(self, series: _Series) -> None:
        counts = series.counts[:]
        total = series.total
        delta = [now - before for now, before in zip(counts, series.flushed_counts, strict=False)]
        n = sum(delta)
        if n <= 0:
            return
        delta_total = total - series.flushed_total
        series.flushed_counts = counts
        series.flushed_total = total
        low, high = series.low, series.high
        series.low, series.high = math.inf, -math.inf
        # One real observation through the public API creates the SDK's
        # aggregation for this attribute set in every reader ...
        first_bucket = next(i for i, c in enumerate(delta) if c)
        first = self._representative(first_bucket, low, high)
        instrument = _real_instrument(self.instrument)
        instrument.record(first, series.attributes)
        delta[first_bucket] -= 1
        delta_total -= first
        if n == 1:
            return
        # ... and the rest is merged into it.
        if not _merge(instrument, series.attributes, self.bounds, delta, delta_total, low, high):
            for bucket, count in enumerate(delta):
                value = self._representative(bucket, low, high)
                for _ in range(count):
                    instrument.record(value, series.attributes)

    def _representative(self, bucket: int, low: float, high: float) -> float:
        lower = self.bounds[bucket - 1] if bucket > 0 else -math.inf
        upper = self.bounds[bucket] if bucket < len(self.bounds) else math.inf
        for value in (low, high):
            if lower < value <= upper:
                return value
        if math.isfinite(upper):
            return upper
        return lower if math.isfinite(lower) else 0.0


class _Series:
    __slots__ = (
        "attributes",
        "counts",
        "exemplars",
        "flushed_counts",
        "flushed_total",
        "high",
        "low",
        "total",
    )

    def __init__(self, attributes: AttributeDict, buckets: int) -> None:
        self.attributes = attributes
        self.counts = [0] * buckets
        # per bucket: an observation with an exemplar went to the SDK this interval
        self.exemplars = [False] * buckets
        self.flushed_counts = [0] * buckets
        self.total = 0.0
        self.flushed_total = 0.0
        self.low = math.inf
        self.high = -math.inf


def _real_instrument(instrument: Any) -> Any:
    real = getattr(instrument, "_real_instrument", None)
    return real if real is not None else instrument


def _merge(
    instrument: Any,
    attributes: AttributeDict,
    bounds: tuple[float, ...],
    delta: list[int],
    delta_total: float,
    low: float,
    high: float,
) -> bool:
    """Add pre-aggregated buckets to the SDK's explicit-bucket aggregations.

    Uses SDK internals (pinned opentelemetry-sdk 1.45); returns False when they
    are not what is expected, and the caller records representative values.
    """
    try:
        from opentelemetry.sdk.metrics._internal._view_instrument_match import (
            _hash_attributes,
        )
        from opentelemetry.sdk.metrics._internal.aggregation import (
            _ExplicitBucketHistogramAggregation,
        )

        consumer = instrument._measurement_consumer
        targets = []
        for storage in consumer._reader_storages.values():
            for match in storage._get_or_init_view_instrument_match(instrument):
                keys = match._view._attribute_keys
                attrs = (
                    attributes
                    if keys is None
                    else {k: v for k, v in attributes.items() if k in keys}
                )
                aggregation = match._attributes_aggregation.get(_hash_attributes(attrs))
                if aggregation is None:
                    continue  # e.g. a view dropping the instrument
                if (
                    type(aggregation) is not _ExplicitBucketHistogramAggregation
                    or aggregation._boundaries != bounds
                ):
                    return False
                targets.append(aggregation)
    except Exception:
        report("histogram merge")
        return False
    for target in targets:
        merged: Any = target
        with merged._lock:
            if merged._value is None:
                merged._value = merged._get_empty_bucket_counts()
            value = merged._value
            for index, count in enumerate(delta):
                if count:
                    value[index] += count
            merged._sum += delta_total
            if merged._record_min_max:
                merged._min = min(merged._min, low)
                merged._max = max(merged._max, high)
    return True


class Instruments:
    """Every discord.* instrument of the contract, plus their in-process state."""

    def __init__(self, meter: Meter, event_loop_lag_interval: float) -> None:
        self.meter = meter
        self.lag_interval = event_loop_lag_interval
        # (event, shard) -> [count]; bounded: gateway event names x shards
        self.event_cells: dict[tuple[str, int], list[int]] = {}
        self.command_active: dict[str, int] = {}
        # url.template -> the last X-RateLimit-Remaining header, parsed when read
        self.ratelimit_remaining: dict[str, str] = {}
        self.task_last_success: dict[str, float] = {}
        self.loop_lag: dict[int, float] = {}
        self._lag_tasks: weakref.WeakValueDictionary[int, asyncio.Task[None]] = (
            weakref.WeakValueDictionary()
        )
        self.stopped = False

        meter.create_observable_counter(
            semconv.METRIC_GATEWAY_EVENTS,
            callbacks=[self._observe_events],
            unit="{event}",
            description="Gateway dispatch events received.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_GATEWAY_LATENCY,
            callbacks=[self._observe_latency],
            unit="s",
            description="Heartbeat round-trip latency of each shard.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_SHARD_CONNECTED,
            callbacks=[self._observe_connected],
            unit="1",
            description="1 while the shard's gateway connection is open, else 0.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_GUILDS,
            callbacks=[self._observe_guilds],
            unit="{guild}",
            description="Guilds in the bot's cache.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_USERS,
            callbacks=[self._observe_users],
            unit="{user}",
            description="Users in the bot's cache.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_REST_RATELIMIT_REMAINING,
            callbacks=[self._observe_remaining],
            unit="{request}",
            description="Requests left in the route's current rate-limit window.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_TASK_LAST_SUCCESS,
            callbacks=[self._observe_last_success],
            unit="s",
            description="Unix time of the task loop's last successful iteration.",
        )
        meter.create_observable_gauge(
            semconv.METRIC_EVENT_LOOP_LAG,
            callbacks=[self._observe_lag],
            unit="s",
            description="How late the event loop ran a probe callback.",
        )
        meter.create_observable_up_down_counter(
            semconv.METRIC_COMMAND_ACTIVE,
            callbacks=[self._observe_active],
            unit="{command}",
            description="Commands currently running.",
        )
        self.reconnects = meter.create_counter(
            semconv.METRIC_GATEWAY_RECONNECTS,
            unit="{reconnect}",
            description="Gateway reconnections, by kind (resume or identify).",
        )
        self.ratelimits = meter.create_counter(
            semconv.METRIC_REST_RATELIMITS,
            unit="{response}",
            description="429 responses from the Discord REST API.",
        )
        self.listener_duration = FastHistogram(
            meter.create_histogram(
                semconv.METRIC_LISTENER_DURATION,
                unit="s",
                description="Duration of one event listener run.",
                explicit_bucket_boundaries_advisory=semconv.BUCKETS_LISTENER,
            ),
            semconv.BUCKETS_LISTENER,
        )
        self.command_duration = FastHistogram(
            meter.create_histogram(
                semconv.METRIC_COMMAND_DURATION,
                unit="s",
                description="Duration of a command invocation.",
                explicit_bucket_boundaries_advisory=semconv.BUCKETS_COMMAND,
            ),
            semconv.BUCKETS_COMMAND,
        )
        self.component_duration = FastHistogram(
            meter.create_histogram(
                semconv.METRIC_COMPONENT_DURATION,
                unit="s",
                description="Duration of a component or modal interaction callback.",
                explicit_bucket_boundaries_advisory=semconv.BUCKETS_COMMAND,
            ),
            semconv.BUCKETS_COMMAND,
        )
        self.ack_duration = FastHistogram(
            meter.create_histogram(
                semconv.METRIC_INTERACTION_ACK_DURATION,
                unit="s",
                description="From gateway receipt of an interaction to its initial response.",
                explicit_bucket_boundaries_advisory=semconv.BUCKETS_INTERACTION_ACK,
            ),
            semconv.BUCKETS_INTERACTION_ACK,
        )
        self.rest_duration = FastHistogram(
            meter.create_histogram(
                semconv.METRIC_REST_REQUEST_DURATION,
                unit="s",
                description="Duration of a Discord REST call, rate-limit retries included.",
                explicit_bucket_boundaries_advisory=semconv.BUCKETS_REST,
            ),
            semconv.BUCKETS_REST,
        )
        self.task_duration = FastHistogram(
            meter.create_histogram(
                semconv.METRIC_TASK_DURATION,
                unit="s",
                description="Duration of one ext.tasks loop iteration.",
                explicit_bucket_boundaries_advisory=semconv.BUCKETS_TASK,
            ),
            semconv.BUCKETS_TASK,
        )
        self._histograms = (
            self.listener_duration,
            self.command_duration,
            self.component_duration,
            self.ack_duration,
            self.rest_duration,
            self.task_duration,
        )
        self._adopted: tuple[FastHistogram, ...] = ()

    # --- gateway events ------------------------------------------------------
    def event_cell(self, event: str, shard: int) -> list[int]:
        key = (event, shard)
        cell = self.event_cells.get(key)
        if cell is None:
            cell = self.event_cells[key] = [0]
        return cell

    def adopt(self, instrument: Histogram, bounds: Sequence[float]) -> FastHistogram:
        """A :class:`FastHistogram` over another instrumentation's SDK histogram
        (asyncpg's), flushed with these: one per instrument."""
        for histogram in self._adopted:
            if histogram.instrument is instrument:
                return histogram
        histogram = FastHistogram(instrument, bounds)
        self._adopted = (*self._adopted, histogram)  # a new tuple: flush() may be iterating
        return histogram

    def flush(self) -> None:
        for histogram in self._histograms + self._adopted:
            histogram.flush()

    def _observe_events(self, options: CallbackOptions) -> Iterable[Observation]:
        # Collection starts here: merge the in-process histograms first.
        self.flush()
        if self.stopped:
            return
        for (event, shard), cell in list(self.event_cells.items()):
            if cell[0]:
                yield Observation(cell[0], {semconv.GATEWAY_EVENT: event, semconv.SHARD_ID: shard})

    # --- gauges ----------------------------------------------------------------
    def _observe_latency(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        for shard, ws in _websockets():
            try:
                latency = ws.latency
            except Exception:
                continue
            if math.isfinite(latency):
                yield Observation(latency, {semconv.SHARD_ID: shard})

    def _observe_connected(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        for shard, ws in _websockets():
            try:
                connected = bool(ws.open)
            except Exception:
                connected = False
            yield Observation(1 if connected else 0, {semconv.SHARD_ID: shard})

    def _observe_guilds(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        live = clients.live_clients()
        if live:
            yield Observation(sum(len(c._connection._guilds) for c in live))

    def _observe_users(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        live = clients.live_clients()
        if live:
            yield Observation(sum(len(c._connection._users) for c in live))

    def _observe_remaining(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        for template, header in list(self.ratelimit_remaining.items()):
            try:
                remaining = int(float(header))
            except ValueError:
                continue  # not a number: nothing to report for this route
            yield Observation(remaining, {semconv.URL_TEMPLATE: template})

    def _observe_last_success(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        for name, when in list(self.task_last_success.items()):
            yield Observation(when, {semconv.TASK_NAME: name})

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        if self.loop_lag:
            yield Observation(max(self.loop_lag.values()))

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        if self.stopped:  # uninstrumented: a later instrument() reports instead
            return
        for kind, active in list(self.command_active.items()):
            yield Observation(active, {semconv.COMMAND_TYPE: kind})

    # --- event loop lag probe ----------------------------------------------------
    def start_lag_probe(self, client: discord.Client) -> None:
        loop = asyncio.get_running_loop()
        key = id(loop)
        if key in self._lag_tasks:
            return
        self._lag_tasks[key] = loop.create_task(self._probe(key), name="discord-otel: loop lag")

    async def _probe(self, key: int) -> None:
        interval = self.lag_interval
        loop = asyncio.get_running_loop()
        try:
            while not self.stopped:
                expected = loop.time() + interval
                await asyncio.sleep(interval)
                self.loop_lag[key] = max(0.0, loop.time() - expected)
        finally:
            self.loop_lag.pop(key, None)

    def stop(self) -> None:
        self.stopped = True
        for task in list(self._lag_tasks.values()):
            task.cancel()


def _websockets() -> Iterable[tuple[int, Any]]:
    for client in clients.live_clients():
        shards = getattr(client, "_AutoShardedClient__shards", None)
        if isinstance(shards, dict):
            for shard_id, info in list(shards.items()):
                ws = getattr(info, "ws", None)
                if ws is not None:
                    yield shard_id, ws
            continue
        ws = getattr(client, "ws", None)
        if ws is not None:
            yield (getattr(ws, "shard_id", None) or 0), ws


def now() -> float:
    return time.time()


Clock = Callable[[], float]
