"""Ratio sampling through a real bot: a gateway event's trace is decided when the
event arrives, and a kept trace is exported whole while a dropped one exports
nothing -- yet its logs still carry its own trace id."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanContext
from tests.instrumentation.conftest import Telemetry, reinstrument, running_bot
from tests.instrumentation.test_metrics import attrs

from discord_otel import set_discord_context

RATIO = TraceIdRatioBased(0.5)

# every test here with the compiled and the Python gateway parser
pytestmark = pytest.mark.usefixtures("gateway_parser")


class CountingIds(RandomIdGenerator):
    def __init__(self) -> None:
        self.trace_ids = 0

    def generate_trace_id(self) -> int:
        self.trace_ids += 1
        return super().generate_trace_id()


def message_events(telemetry: Telemetry) -> int:
    metric = telemetry.metrics().get("discord.gateway.events")
    points = metric.data.data_points if metric is not None else ()
    return sum(
        int(point.value)
        for point in points
        if point.attributes.get("discord.gateway.event") == "MESSAGE_CREATE"
    )


def kept_by_sampler(trace_id: int) -> bool:
    """The SDK's own rule for a root under ParentBased(TraceIdRatioBased)."""
    return trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < RATIO.bound


async def test_ratio_sampling_keeps_whole_traces_and_drops_the_rest(telemetry: Telemetry) -> None:
    spans = InMemorySpanExporter()
    ids = CountingIds()
    provider = TracerProvider(sampler=ParentBased(RATIO), id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(spans))
    log_records = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_records))
    log = logging.getLogger("tests.sampling")
    log.setLevel(logging.INFO)
    log_handler = LoggingHandler(logger_provider=logger_provider)
    log.addHandler(log_handler)

    reinstrument(telemetry, provider)
    tracer = provider.get_tracer("tests")
    seen: list[tuple[SpanContext, dict[str, Any]]] = []
    try:
        async with running_bot(tracer) as harness:

            @harness.bot.command()
            async def work(ctx: Any) -> None:
                seen.append((trace.get_current_span().get_span_context(), set_discord_context()))
                log.info("working")
                with tracer.start_as_current_span("user work"):
                    await ctx.send("done")

            # start-up done: READY and the two task iterations (roots of their own)
            await telemetry.settle(
                lambda: harness.behaviour.task_runs == 2 and harness.bot.is_ready()
            )
            events_before, ids_before = message_events(telemetry), ids.trace_ids
            for _ in range(40):
                await harness.sim.send_message("!work")
            await telemetry.settle(lambda: len(seen) == 40)
            # one trace id, one decision per event: a kept trace is not decided again
            assert ids.trace_ids - ids_before == message_events(telemetry) - events_before
            for _ in range(10):
                await harness.sim.send_message("listener-boom", wait=False)
            for _ in range(20):
                await harness.sim.slash("config set", {"key": "a", "value": "b"})
            await telemetry.settle(lambda: len(harness.behaviour.listener_errors) == 10)
            metrics = telemetry.metrics()
    finally:
        log.removeHandler(log_handler)
        logger_provider.shutdown()
        telemetry.uninstrument()

    exported = list(spans.get_finished_spans())
    by_trace: dict[int, set[str]] = {}
    for span in exported:
        assert span.context is not None
        by_trace.setdefault(span.context.trace_id, set()).add(span.name)

    # Every command's trace was decided once, by the sampler's own rule, on the
    # trace id the event got when it arrived: kept whole, or not exported at all.
    assert len(seen) == 40
    kept = 0
    for context, discord_context in seen:
        assert context.is_valid
        assert context.trace_flags.sampled == kept_by_sampler(context.trace_id)
        if context.trace_flags.sampled:
            kept += 1
            assert by_trace[context.trace_id] == {
                "gateway MESSAGE_CREATE",
                "listener on_message",
                "command work",
                "user work",
                "POST /channels/{channel_id}/messages",
            }
        else:
            assert context.trace_id not in by_trace
        # the Discord context is there either way
        assert discord_context["discord.command.name"] == "work"
        assert "discord.guild.id" in discord_context
        assert "discord.channel.id" in discord_context
    assert 0 < kept < 40
    # each event its own trace, kept or dropped
    assert len({context.trace_id for context, _ in seen}) == 40
    # logs carry the trace id of their event, also when it was dropped
    logged = [record.log_record for record in log_records.get_finished_logs()]
    assert [record.trace_id for record in logged] == [context.trace_id for context, _ in seen]

    # Slash commands (interactions): each exported command has its whole tree, and
    # nothing below a dropped interaction became a trace of its own.
    slash_traces = [names for names in by_trace.values() if "command config set" in names]
    assert 0 < len(slash_traces) < 20
    for names in slash_traces:
        assert names == {
            "gateway INTERACTION_CREATE",
            "command config set",
            "POST /interactions/{webhook_id}/{webhook_token}/callback",
        }
    for names in by_trace.values():
        if any(name.startswith(("POST ", "command ", "listener ")) for name in names):
            assert any(name.startswith("gateway ") for name in names), names

    # a failing listener under a dropped event still reaches on_error and its series
    assert harness.behaviour.listener_errors == ["on_message"] * 10
    errors = [
        point
        for metric in [metrics["discord.listener.duration"]]
        for point in metric.data.data_points
        if point.attributes.get("error.type") == "KeyError"
    ]
    assert [point.count for point in errors] == [10]
    assert {"discord.listener.name": "on_message", "error.type": "KeyError"} in attrs(
        metrics["discord.listener.duration"]
    )


@pytest.mark.postgres
async def test_a_dropped_events_queries_make_no_span_and_still_count(
    telemetry: Telemetry, postgres_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a dropped event the asyncpg span instrumentation is skipped (its span
    could only be non-recording); under a kept one the query's span is in the trace.
    Every query runs and counts in db.client.operation.duration either way."""
    asyncpg = pytest.importorskip("asyncpg")
    from opentelemetry.instrumentation import asyncpg as contrib

    from discord_otel.asyncpg_metrics import AsyncPGMetricsInstrumentor
    from discord_otel.asyncpg_spans import skip_under_sampled_out

    prepared: list[str] = []  # statements the span instrumentation prepared a span for
    hydrate = contrib._hydrate_span_from_args

    def counting_hydrate(connection: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        prepared.append(query)
        return hydrate(connection, query, *args, **kwargs)

    monkeypatch.setattr(contrib, "_hydrate_span_from_args", counting_hydrate)
    spans = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(RATIO))
    provider.add_span_processor(SimpleSpanProcessor(spans))
    reinstrument(telemetry, provider)
    query_metrics = AsyncPGMetricsInstrumentor()
    query_metrics.instrument(meter_provider=telemetry.meter_provider)
    query_spans = contrib.AsyncPGInstrumentor()
    skip_under_sampled_out(query_spans)
    query_spans.instrument(tracer_provider=provider)
    answers: list[tuple[SpanContext, Any]] = []
    try:
        pool = await asyncpg.create_pool(postgres_server.dsn, min_size=1, max_size=2)
        async with running_bot(provider.get_tracer("tests")) as harness:

            @harness.bot.command()
            async def lookup(ctx: Any, number: int) -> None:
                value = await pool.fetchval("SELECT $1::int * 2", number)
                answers.append((trace.get_current_span().get_span_context(), value))
                await ctx.send(str(value))

            await telemetry.settle(lambda: harness.bot.is_ready())
            for number in range(30):
                await harness.sim.send_message(f"!lookup {number}")
            await telemetry.settle(lambda: len(answers) == 30)
            metrics = telemetry.metrics()
        await pool.close()
    finally:
        query_spans.uninstrument()
        query_metrics.uninstrument()
        telemetry.uninstrument()

    assert sorted(value for _, value in answers) == [2 * n for n in range(30)]
    kept = {context.trace_id for context, _ in answers if context.trace_flags.sampled}
    assert 0 < len(kept) < 30
    db_spans = [s for s in spans.get_finished_spans() if s.name.startswith("SELECT")]
    # one span per kept command's query, in that command's trace; none for the others
    assert sorted(s.context.trace_id for s in db_spans if s.context) == sorted(kept)
    assert len(prepared) == len(kept)
    points = metrics["db.client.operation.duration"].data.data_points
    assert sum(point.count for point in points) >= 30  # every query, pool housekeeping aside
