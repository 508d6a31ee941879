"""Micro costs that explain the ratios: what one span, one log record, one
histogram record costs with the OpenTelemetry SDK as the distro sets it up
(batch processors; exporters that drop, so only the in-process cost counts).

Run in a fresh process (OpenTelemetry's global providers are set once)::

    python -m benchmarks.micro [--n 100000]

prints a JSON object of microseconds per operation (median of 5 repeats).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPEATS = 5


def _per_op_us(fn: Callable[[int], None], n: int) -> float:
    fn(max(100, n // 20))  # warm up
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn(n)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def measure(n: int) -> dict[str, float]:
    from opentelemetry import context, trace
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from opentelemetry.trace import SpanKind

    class DropSpans(SpanExporter):
        def export(self, spans: Sequence[Any]) -> Any:
            from opentelemetry.sdk.trace.export import SpanExportResult

            return SpanExportResult.SUCCESS

    class DropLogs(LogExporter):
        def export(self, batch: Sequence[Any]) -> Any:
            from opentelemetry.sdk._logs.export import LogExportResult

            return LogExportResult.SUCCESS

        def shutdown(self) -> None:
            return None

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    attributes = {"discord.gateway.event": "MESSAGE_CREATE", "discord.shard.id": 0}
    results: dict[str, float] = {}

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropSpans()))
    tracer = provider.get_tracer("bench")

    def spans(k: int) -> None:
        for _ in range(k):
            tracer.start_span(
                "gateway MESSAGE_CREATE", kind=SpanKind.CONSUMER, attributes=attributes
            ).end()

    def current_spans(k: int) -> None:
        for _ in range(k):
            with tracer.start_as_current_span("listener on_message", attributes=attributes):
                pass

    results["span (sampled, start+end, 2 attributes)"] = _per_op_us(spans, n)
    results["span as current (sampled, context attach/detach)"] = _per_op_us(current_spans, n)

    sampled10 = TracerProvider(sampler=ParentBased(TraceIdRatioBased(0.1)))
    sampled10.add_span_processor(BatchSpanProcessor(DropSpans()))
    tracer10 = sampled10.get_tracer("bench")

    def spans10(k: int) -> None:
        for _ in range(k):
            tracer10.start_span("gateway MESSAGE_CREATE", attributes=attributes).end()

    results["span at 10% ratio sampling (average)"] = _per_op_us(spans10, n)

    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    meter = meters.get_meter("bench")
    histogram = meter.create_histogram("discord.listener.duration", unit="s")
    counter = meter.create_counter("discord.gateway.events")
    hist_attributes = {"discord.listener.name": "on_message"}

    def histogram_records(k: int) -> None:
        for _ in range(k):
            histogram.record(0.0004, hist_attributes)

    def counter_adds(k: int) -> None:
        for _ in range(k):
            counter.add(1, attributes)

    results["SDK histogram record (1 attribute)"] = _per_op_us(histogram_records, n)
    results["SDK counter add (2 attributes)"] = _per_op_us(counter_adds, n)

    span = tracer.start_span("exemplar parent")
    token = context.attach(trace.set_span_in_context(span))
    try:
        results["SDK histogram record inside a sampled span (exemplar)"] = _per_op_us(
            histogram_records, n
        )
    finally:
        context.detach(token)
        span.end()

    log_provider = LoggerProvider()
    log_provider.add_log_record_processor(BatchLogRecordProcessor(DropLogs()))
    logger = logging.getLogger("bench.micro")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=log_provider)
    logger.addHandler(handler)

    def log_records(k: int) -> None:
        for index in range(k):
            logger.info("handled message %d", index)

    results["log record via OTel LoggingHandler"] = _per_op_us(log_records, max(1000, n // 5))
    logger.removeHandler(handler)
    logger.addHandler(logging.NullHandler())
    results["log record, plain logging (no handler output)"] = _per_op_us(log_records, n)

    import contextvars

    var: contextvars.ContextVar[Any] = contextvars.ContextVar("bench")

    def contextvar_set_reset(k: int) -> None:
        for _ in range(k):
            var.reset(var.set(1))

    results["contextvar set+reset"] = _per_op_us(contextvar_set_reset, n)

    def clock(k: int) -> None:
        now = time.time_ns
        for _ in range(k):
            now()

    results["time.time_ns()"] = _per_op_us(clock, n)
    results.update(_export_costs(n))
    results.update(_encoder_costs(n))
    results.update(_aiohttp_costs(max(200, n // 50), provider, meters))
    provider.shutdown()
    sampled10.shutdown()
    meters.shutdown()
    log_provider.shutdown()
    return results


def _export_costs(n: int) -> dict[str, float]:
    """Encoding finished spans to OTLP protobuf, as the exporter does before each POST."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    finished: list[Any] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    tracer = provider.get_tracer("bench")
    attributes = {
        "discord.gateway.event": "INTERACTION_CREATE",
        "discord.shard.id": 0,
        "discord.guild.id": "1300000000000000001",
        "discord.channel.id": "1300000000000000002",
    }
    for _ in range(512):
        tracer.start_span("gateway INTERACTION_CREATE", attributes=attributes).end()
    batch = finished[:512]

    def encode(k: int) -> None:
        for _ in range(max(1, k // 512)):
            encode_spans(batch).SerializeToString()

    per_span = _per_op_us(encode, max(512, n // 10 // 512 * 512))  # encode() does k/512 batches
    provider.shutdown()
    return {"OTLP protobuf encoding, per span (batches of 512)": per_span}


def _encoder_costs(n: int) -> dict[str, float]:
    """The stock OTLP span encoder against discord-otel's (discord_otel.otlp_encoding),
    on 3-span command trees as a bot makes them: a CONSUMER gateway span with 4
    attributes, a SERVER command span with 3, a CLIENT REST span with 4."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.trace import SpanKind, set_span_in_context

    from discord_otel import otlp_encoding

    finished: list[Any] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            finished.extend(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Keep()))
    gateway = provider.get_tracer("discord_otel.gateway", "0.1.0")
    commands = provider.get_tracer("discord_otel.commands", "0.1.0")
    rest = provider.get_tracer("discord_otel.rest", "0.1.0")
    tree = 0
    while len(finished) < 512:
        tree += 1
        guild = str(1300000000000000000 + tree % 50)
        root = gateway.start_span(
            "gateway INTERACTION_CREATE",
            kind=SpanKind.CONSUMER,
            attributes={
                "discord.gateway.event": "INTERACTION_CREATE",
                "discord.shard.id": 0,
                "discord.guild.id": guild,
                "discord.interaction.type": 2,
            },
        )
        command = commands.start_span(
            "command ping",
            context=set_span_in_context(root),
            kind=SpanKind.SERVER,
            attributes={
                "discord.command.name": "ping",
                "discord.command.type": "slash",
                "discord.guild.id": guild,
            },
        )
        rest.start_span(
            "POST /channels/{channel_id}/messages",
            context=set_span_in_context(command),
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                "url.template": "/channels/{channel_id}/messages",
                "server.address": "discord.com",
                "http.response.status_code": 200,
            },
        ).end()
        command.end()
        root.end()
    batch = finished[:512]

    def stock(k: int) -> None:
        for _ in range(max(1, k // 512)):
            encode_spans(batch).SerializePartialToString()

    def fast(k: int) -> None:
        for _ in range(max(1, k // 512)):
            otlp_encoding.encode_spans(batch).SerializePartialToString()

    k = max(512, n // 10 // 512 * 512)  # each call does k/512 batches of 512
    results = {
        "OTLP encode per span, stock (3-span command trees, batches of 512)": _per_op_us(stock, k),
        "OTLP encode per span, discord-otel (3-span command trees, batches of 512)": _per_op_us(
            fast, k
        ),
    }
    provider.shutdown()
    return results


def _aiohttp_costs(n: int, tracer_provider: Any, meter_provider: Any) -> dict[str, float]:
    """One aiohttp request to a loopback server, without and with the aiohttp-client
    instrumentation (sampled span to a dropping exporter, duration histogram)."""
    import asyncio

    from aiohttp import ClientSession, web
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"id": "1"})

    async def measure_requests(count: int) -> float:
        app = web.Application()
        app.router.add_post("/api/v10/channels/1/messages", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/api/v10/channels/1/messages"
        try:
            async with ClientSession() as session:
                for _ in range(50):
                    async with session.post(url, json={"content": "pong"}) as response:
                        await response.read()
                samples = []
                for _ in range(REPEATS):
                    start = time.process_time()
                    for _ in range(count):
                        async with session.post(url, json={"content": "pong"}) as response:
                            await response.read()
                    samples.append((time.process_time() - start) / count * 1e6)
                return statistics.median(samples)
        finally:
            await runner.cleanup()

    plain = asyncio.run(measure_requests(n))
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    try:
        instrumented = asyncio.run(measure_requests(n))
    finally:
        instrumentor.uninstrument()
    return {
        "aiohttp request + loopback server, CPU per request (no instrumentation)": plain,
        "aiohttp-client instrumentation, added CPU per request": instrumented - plain,
    }


def run_isolated(n: int) -> dict[str, float]:
    """Run :func:`measure` in a fresh interpreter and return its numbers."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.micro", "--n", str(n)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    data: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description="micro costs of OpenTelemetry operations")
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.n)))


if __name__ == "__main__":
    main()
