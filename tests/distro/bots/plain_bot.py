"""A small "bot" without Discord for the distro tests: starts OpenTelemetry with
discord_otel.configure(), then handles synthetic events on an asyncio loop,
each a span with a log line (carrying a webhook URL with a token) and a
histogram record, optionally an asyncpg query.

Environment: BOT_SECONDS (run time; 0 = until signalled), BOT_RATE (events per
second), BOT_PROTOCOL, DATABASE_URL, BOT_STATS (a file to write JSON stats to).
Prints one JSON line of stats at the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import sys
import time

import discord_otel

SECRET_TOKEN = os.environ.get("DISCORD_TOKEN", "")
WEBHOOK_TOKEN = "whTOKEN-" + "x" * 60


async def main() -> dict:
    pipeline = discord_otel.configure(service_name=os.environ.get("BOT_SERVICE_NAME") or None)
    from opentelemetry import metrics, trace

    logging.getLogger().setLevel(logging.INFO)
    log = logging.getLogger("discord.webhook.async_")
    tracer = trace.get_tracer("plain_bot")
    histogram = metrics.get_meter("plain_bot").create_histogram("bot.handle.duration", unit="s")
    pool = None
    if os.environ.get("DATABASE_URL"):
        import asyncpg

        pool = await asyncpg.connect(os.environ["DATABASE_URL"])
    seconds = float(os.environ.get("BOT_SECONDS", "3"))
    rate = float(os.environ.get("BOT_RATE", "50"))
    stats = {"handled": 0, "max_lag": 0.0, "max_rss_kb": 0, "max_queue": {}, "trace_ids": []}
    started = time.monotonic()
    interval = 1.0 / rate
    next_tick = time.monotonic()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig_name in ("SIGUSR1",):
        import signal

        loop.add_signal_handler(getattr(signal, sig_name), stop.set)
    while not stop.is_set() and (seconds == 0 or time.monotonic() - started < seconds):
        expected = next_tick
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        lag = time.monotonic() - expected
        stats["max_lag"] = max(stats["max_lag"], lag)
        next_tick = max(next_tick + interval, time.monotonic() - 1.0)
        t0 = time.perf_counter()
        with tracer.start_as_current_span("command ping") as span:
            log.info(
                "POST https://discord.com/api/v10/webhooks/1234/%s responded with 429 (token %s)",
                WEBHOOK_TOKEN,
                SECRET_TOKEN,
            )
            if pool is not None:
                await pool.fetchval("SELECT $1::text", "sql-parameter-value")
            histogram.record(time.perf_counter() - t0, {"outcome": "success"})
            if len(stats["trace_ids"]) < 5:
                stats["trace_ids"].append(format(span.get_span_context().trace_id, "032x"))
        stats["handled"] += 1
        if stats["handled"] % 50 == 0:
            stats["max_rss_kb"] = max(
                stats["max_rss_kb"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            )
            for name, length in pipeline.queue_lengths().items():
                stats["max_queue"][name] = max(stats["max_queue"].get(name, 0), length)
    if pool is not None:
        await pool.close()
    stats["rate"] = rate
    stats["elapsed"] = time.monotonic() - started
    return stats


if __name__ == "__main__":
    stats = asyncio.run(main())
    from discord_otel.configurator import get_pipeline

    pipeline = get_pipeline()
    assert pipeline is not None
    t0 = time.monotonic()
    report = pipeline.shutdown()
    stats["shutdown_seconds"] = time.monotonic() - t0
    stats["dropped"] = report.dropped
    stats["timed_out"] = list(report.timed_out)
    stats["counts"] = {
        c.signal: {"exported": c.exported, "dropped": c.dropped} for c in report.counts
    }
    print(json.dumps(stats), flush=True)
    sys.exit(0)
