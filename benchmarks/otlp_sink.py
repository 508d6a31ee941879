"""A minimal OTLP/HTTP receiver for the benchmarks, run as its own process.

It accepts ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` and answers
with an empty (valid) protobuf export response, counting requests and bytes;
it decodes nothing, so it takes as little of the shared CPU as it can.
``GET /stats`` returns the counts, ``POST /reset`` zeroes them. Loopback only.
With ``--decode`` (diagnosis, not for timing runs) it also counts span names.

    python -m benchmarks.otlp_sink --port-file FILE [--lifetime SECONDS] [--decode]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

SIGNALS = ("traces", "metrics", "logs")


def make_app(decode: bool = False) -> web.Application:
    stats: dict[str, Any] = {signal: {"requests": 0, "bytes": 0} for signal in SIGNALS}
    names: Counter[str] = Counter()  # span names, with --decode (diagnosis only)

    async def export(request: web.Request) -> web.Response:
        signal = request.match_info["signal"]
        body = await request.read()
        entry = stats[signal]
        entry["requests"] += 1
        entry["bytes"] += len(body)
        if decode and signal == "traces":
            from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

            message = trace_service_pb2.ExportTraceServiceRequest()
            message.ParseFromString(body)
            for resource in message.resource_spans:
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        names[f"{scope.scope.name}: {span.name}"] += 1
            stats["span_names"] = dict(names)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(request: web.Request) -> web.Response:
        for signal in SIGNALS:
            stats[signal]["requests"] = stats[signal]["bytes"] = 0
        names.clear()
        stats.pop("span_names", None)
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/{signal:traces|metrics|logs}", export)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/reset", reset)
    return app


async def serve(port_file: Path, lifetime: float, decode: bool) -> None:
    runner = web.AppRunner(make_app(decode), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({"port": port}))
    tmp.replace(port_file)
    try:
        await asyncio.sleep(lifetime)  # bounded: the harness stops it long before
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description="OTLP/HTTP sink for the benchmarks")
    parser.add_argument("--port-file", type=Path, required=True)
    parser.add_argument("--lifetime", type=float, default=4 * 3600)
    parser.add_argument("--decode", action="store_true", help="count span names (diagnosis)")
    args = parser.parse_args()
    asyncio.run(serve(args.port_file, args.lifetime, args.decode))


if __name__ == "__main__":
    main()
