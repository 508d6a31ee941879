"""Fixtures: a running simulator, and real discord.py bots started against it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import discord
import pytest

from discord_otel.simulator import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator() as simulator:
        with simulator.redirect():
            yield simulator


class RunningBot:
    """Starts a client against the simulator and always closes it."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.clients: list[tuple[discord.Client, asyncio.Task[None]]] = []

    async def start(self, client: discord.Client, *, commands: bool = False) -> discord.Client:
        task = asyncio.create_task(client.start(self.sim.token))
        self.clients.append((client, task))
        await self.sim.wait_ready(timeout=15, commands=commands)
        return client

    async def close(self) -> None:
        for client, task in self.clients:
            await client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 10)


@pytest.fixture
async def running(sim: Simulator) -> AsyncIterator[RunningBot]:
    bots = RunningBot(sim)
    try:
        yield bots
    finally:
        await bots.close()


def message_intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


def bodies(calls: list[Any], route: str, method: str = "POST") -> list[Any]:
    """The request bodies of the calls to one route."""
    return [c.json for c in calls if c.route == route and c.method == method]


Predicate = Callable[[], bool]


async def eventually(predicate: Predicate, timeout: float = 5) -> None:
    """Wait until ``predicate()`` holds (a bounded poll; fails the test otherwise)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.01)
