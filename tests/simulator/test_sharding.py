"""An AutoShardedClient on 2 shards: guild routing, forced reconnects, RESUME."""

from __future__ import annotations

import asyncio
import contextlib

import discord

from discord_otel.simulator import Simulator
from discord_otel.simulator.state import shard_for_guild

from .conftest import eventually, message_intents


async def test_two_shards_survive_a_forced_reconnect_and_resume() -> None:
    async with Simulator(shards=2, guilds=4) as sim:
        with sim.redirect():
            client = discord.AutoShardedClient(intents=message_intents())

            async def identify_at_once(shard_id: int | None, *, initial: bool = False) -> None:
                """discord.py waits 5 s before re-identifying; no need against the simulator."""

            client.before_identify_hook = identify_at_once  # type: ignore[method-assign]
            seen: list[tuple[int | None, str]] = []
            resumed: list[int] = []

            @client.event
            async def on_message(message: discord.Message) -> None:
                seen.append((message.guild.shard_id if message.guild else None, message.content))

            @client.event
            async def on_shard_resumed(shard_id: int) -> None:
                resumed.append(shard_id)

            task = asyncio.create_task(client.start(sim.token))
            try:
                await sim.wait_ready(timeout=15)
                await client.wait_until_ready()
                # /gateway/bot recommended 2 shards; each got its own guilds.
                assert client.shard_count == 2
                assert sorted(client.shards) == [0, 1]
                for guild in client.guilds:
                    assert guild.shard_id == shard_for_guild(guild.id, 2)
                assert {g.shard_id for g in client.guilds} == {0, 1}

                identifies = [op.shard_id for op in sim.gateway_ops if op.name == "IDENTIFY"]
                await sim.force_reconnect(shard=0, kind="resume")
                await sim.force_reconnect(shard=1, kind="close")
                await eventually(lambda: sorted(resumed) == [0, 1])

                # Both shards resumed their sessions rather than identifying anew...
                assert sorted(op.shard_id for op in sim.gateway_ops if op.name == "RESUME") == [
                    0,
                    1,
                ]
                assert [
                    op.shard_id for op in sim.gateway_ops if op.name == "IDENTIFY"
                ] == identifies
                # ...and events keep flowing to both.
                for index in range(4):
                    await sim.send_message(f"after {index}", guild=index, wait=False)
                await eventually(lambda: len(seen) == 4)
                assert {shard for shard, _ in seen} == {0, 1}

                # An invalidated session makes the shard identify again.
                await sim.force_reconnect(shard=1, kind="invalid_session")
                assert [op.shard_id for op in sim.gateway_ops if op.name == "IDENTIFY"][-1] == 1
                await sim.send_message("after invalid session", guild=1, wait=False)
                await eventually(lambda: len(seen) == 5)
            finally:
                await client.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(task, 10)
