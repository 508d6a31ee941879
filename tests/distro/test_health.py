"""/livez and /readyz over real HTTP, for a real discord.py client on the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest

from discord_otel.health import HealthServer
from discord_otel.simulator import Simulator
from tests.fixtures.services import free_port


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as simulator:
        with simulator.redirect():
            yield simulator


async def _get(port: int, path: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", timeout=aiohttp.ClientTimeout(total=5)) as r,
    ):
        return r.status, await r.json()


async def _poll_ready(port: int, timeout: float = 10.0) -> tuple[int, dict]:  # type: ignore[type-arg]
    """/readyz until 200 (discord.py is ready once the guilds have arrived)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        status, body = await _get(port, "/readyz")
        if status == 200 or loop.time() > deadline:
            return status, body
        await asyncio.sleep(0.05)


async def test_readyz_follows_the_gateway(sim: Simulator) -> None:
    client = discord.Client(intents=discord.Intents.default())
    port = free_port()
    server = HealthServer(("127.0.0.1", port), client)
    await server.start()
    task: asyncio.Task[None] | None = None
    try:
        # before login: not READY, no gateway connection
        status, body = await _get(port, "/readyz")
        assert status == 503
        assert body["status"] == "not ready"
        assert any("not READY" in problem for problem in body["not_ready"])

        status, body = await _get(port, "/livez")
        assert status == 200
        assert body["status"] == "ok"

        task = asyncio.create_task(client.start(sim.token))
        await sim.wait_ready(timeout=15)
        status, body = await _poll_ready(port)
        assert status == 200, body
        assert body["not_ready"] == []
        assert body["clients"][0]["shards"] == {"0": "connected"}

        await client.close()
        status, body = await _get(port, "/readyz")
        assert status == 503
        assert any("closed" in problem for problem in body["not_ready"])
    finally:
        if not client.is_closed():
            await client.close()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)
        await server.stop()


async def test_readyz_without_clients_and_port_in_use() -> None:
    port = free_port()
    server = HealthServer(("127.0.0.1", port))
    await server.start()
    try:
        status, body = await _get(port, "/readyz")
        assert status == 503
        assert body["not_ready"] == ["no Discord client has started"]
        # a second server on the same port warns and does not raise
        other = HealthServer(("127.0.0.1", port))
        await other.start()
        assert not other.started
    finally:
        await server.stop()


async def test_install_starts_on_the_clients_loop(sim: Simulator) -> None:
    """health.install() hooks the instrumentation's client registry: the server starts
    on the loop of the first client tracked."""
    from discord_otel import health
    from discord_otel.instrumentation import clients

    port = free_port()
    health._server = None
    server = health.install(("127.0.0.1", port))
    client = discord.Client(intents=discord.Intents.default())
    task = asyncio.create_task(client.start(sim.token))
    try:
        await sim.wait_ready(timeout=15)
        clients.track(client)  # what the instrumentation does when the client logs in
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.02)
        status, body = await _poll_ready(port)
        assert status == 200, body
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        await server.stop()
        health._server = None
        clients.forget_all()
