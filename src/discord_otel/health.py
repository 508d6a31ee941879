"""``/livez`` and ``/readyz`` for Kubernetes probes, served on the bot's own loop.

Set ``OTEL_PYTHON_DISCORD_HEALTH_ADDRESS=host:port`` (or
``configure(health_address=...)``) and the server starts, with aiohttp, on the
event loop of the first client that logs in:

* ``GET /livez``: 200 while the event loop is responsive. The handler runs on
  that loop, so a blocked loop does not answer at all (the probe times out);
  the body also reports the loop's lag measured by a heartbeat.
* ``GET /readyz``: 200 when every client is READY and every shard's gateway
  connection is open; otherwise 503 with a JSON body naming what is not.

For a bot that wants it explicitly: ``await HealthServer(("127.0.0.1", 8080),
client).start()``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from aiohttp import web

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 0.5
# /livez fails when the heartbeat is this late: the loop is alive but starved.
LIVENESS_LAG_LIMIT = 10.0


def _client_name(client: Any) -> str:
    user = getattr(client, "user", None)
    return f"client {user}" if user is not None else f"client {id(client):x}"


def client_status(client: Any) -> tuple[dict[str, Any], list[str]]:
    """The readiness of one client: a JSON-able status and what is not ready."""
    name = _client_name(client)
    problems: list[str] = []
    ready = bool(client.is_ready())
    closed = bool(client.is_closed())
    shards: dict[str, str] = {}
    if closed:
        problems.append(f"{name}: closed")
    elif not ready:
        problems.append(f"{name}: not READY")
    shard_map = getattr(client, "shards", None)
    if isinstance(shard_map, dict) and shard_map:
        for shard_id, info in sorted(shard_map.items()):
            connected = not info.is_closed()
            shards[str(shard_id)] = "connected" if connected else "disconnected"
            if not connected:
                problems.append(f"{name}: shard {shard_id} disconnected")
    else:
        ws = getattr(client, "ws", None)
        shard_id = getattr(client, "shard_id", None) or 0
        connected = ws is not None and bool(getattr(ws, "open", False))
        shards[str(shard_id)] = "connected" if connected else "disconnected"
        if not connected and not closed:
            problems.append(f"{name}: shard {shard_id} disconnected")
    status = {"client": name, "ready": ready, "closed": closed, "shards": shards}
    return status, problems


class HealthServer:
    """The health endpoints for a set of clients, on one event loop."""

    def __init__(self, address: tuple[str, int], *clients: Any) -> None:
        self.address = address
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet(clients)
        self._runner: web.AppRunner | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._last_beat = time.monotonic()
        self._lag = 0.0
        self.port: int | None = None
        self._starting = False

    def add_client(self, client: Any) -> None:
        self._clients.add(client)

    @property
    def started(self) -> bool:
        return self._runner is not None

    async def _beat(self) -> None:
        while True:
            expected = time.monotonic() + HEARTBEAT_INTERVAL
            await asyncio.sleep(HEARTBEAT_INTERVAL)
            now = time.monotonic()
            self._lag = max(0.0, now - expected)
            self._last_beat = now

    async def livez(self, request: web.Request) -> web.Response:
        since = time.monotonic() - self._last_beat
        body = {"status": "ok", "loop_lag_seconds": round(self._lag, 4)}
        if since > LIVENESS_LAG_LIMIT:
            body["status"] = "event loop starved"
            return web.json_response(body, status=503)
        return web.json_response(body)

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        clients = list(self._clients)
        statuses, problems = [], []
        for client in clients:
            status, client_problems = client_status(client)
            statuses.append(status)
            problems.extend(client_problems)
        if not clients:
            problems.append("no Discord client has started")
        ok = not problems
        return ok, {
            "status": "ready" if ok else "not ready",
            "not_ready": problems,
            "clients": statuses,
        }

    async def readyz(self, request: web.Request) -> web.Response:
        ok, body = self.readiness()
        return web.json_response(body, status=200 if ok else 503)

    async def start(self) -> None:
        """Serve on the running loop (idempotent)."""
        if self._runner is not None or self._starting:
            return
        self._starting = True
        try:
            await self._start()
        finally:
            self._starting = False

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/livez", self.livez)
        app.router.add_get("/readyz", self.readyz)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = self.address
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            logger.warning(
                "discord-otel: cannot serve health endpoints on %s:%d (%s)", host, port, exc
            )
            return
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        self._last_beat = time.monotonic()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())
        logger.info("discord-otel: health endpoints on http://%s:%d", host, self.port)

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


_server: HealthServer | None = None


def install(address: tuple[str, int]) -> HealthServer:
    """Serve the health endpoints for every client the instrumentation tracks,
    starting on the loop of the first one (once per process)."""
    global _server
    if _server is not None:
        return _server
    server = HealthServer(address)
    _server = server

    def on_start(client: Any) -> None:
        server.add_client(client)
        loop = getattr(client, "loop", None)
        if server.started or not isinstance(loop, asyncio.AbstractEventLoop):
            return

        def schedule() -> None:
            if not server.started:
                task = loop.create_task(server.start())
                _tasks.add(task)
                task.add_done_callback(_tasks.discard)

        loop.call_soon_threadsafe(schedule)

    try:
        from discord_otel.instrumentation import clients
    except ImportError:
        logger.warning("discord-otel: the discord instrumentation is missing; no health endpoints")
        return server
    clients.add_start_callback(on_start)
    return server


_tasks: set[asyncio.Task[None]] = set()
