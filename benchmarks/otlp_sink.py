"""A minimal OTLP/HTTP receiver for the benchmarks, run as its own process.

It accepts ``POST /v1/traces``, ``/v1/metrics`` and ``/v1/logs`` and answers
with an empty (valid) protobuf export response, counting requests and bytes;
it decodes nothing, so it takes as little of the shared CPU as it can.
``GET /stats`` returns the counts, ``POST /reset`` zeroes them. Loopback only.

    python -m benchmarks.otlp_sink --port-file FILE [--lifetime SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from aiohttp import web

SIGNALS = ("traces", "metrics", "logs")


def make_app() -> web.Application:
    stats = {signal: {"requests": 0, "bytes": 0} for signal in SIGNALS}

    async def export(request: web.Request) -> web.Response:
        signal = request.match_info["signal"]
        body = await request.read()
        entry = stats[signal]
        entry["requests"] += 1
        entry["bytes"] += len(body)
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def get_stats(request: web.Request) -> web.Response:
        return web.json_response(stats)

    async def reset(request: web.Request) -> web.Response:
        for entry in stats.values():
            entry["requests"] = entry["bytes"] = 0
        return web.json_response(stats)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/{signal:traces|metrics|logs}", export)
    app.router.add_get("/stats", get_stats)
    app.router.add_post("/reset", reset)
    return app


async def serve(port_file: Path, lifetime: float) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
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
    args = parser.parse_args()
    asyncio.run(serve(args.port_file, args.lifetime))


if __name__ == "__main__":
    main()
