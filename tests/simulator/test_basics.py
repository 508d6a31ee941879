"""A plain discord.Client and commands.Bot connect, receive messages and reply."""

from __future__ import annotations

import gc
import weakref

import discord
from discord.ext import commands

from discord_otel.simulator import Simulator

from .conftest import RunningBot, bodies, message_intents


async def test_bot_replies_to_a_prefix_command_and_a_slash_command(
    sim: Simulator, running: RunningBot
) -> None:
    bot = commands.Bot(command_prefix="!", intents=message_intents())

    @bot.command()
    async def ping(ctx: commands.Context[commands.Bot]) -> None:
        await ctx.send("pong")

    @bot.tree.command()
    async def echo(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text)

    async def setup_hook() -> None:
        await bot.tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    await running.start(bot, commands=True)

    calls = await sim.send_message("!ping")
    assert [c.json["content"] for c in calls if c.route == "/channels/{channel_id}/messages"] == [
        "pong"
    ]

    calls = await sim.slash("echo", {"text": "hi"})
    (response,) = bodies(calls, "/interactions/{webhook_id}/{webhook_token}/callback")
    assert response == {"type": 4, "data": {"tts": False, "content": "hi"}}
    assert bot.user is not None
    assert bot.user.id == sim.state.bot_user.id
    assert [c.name for c in sim.commands] == ["echo"]


async def test_a_client_sees_guilds_channels_and_members(
    sim: Simulator, running: RunningBot
) -> None:
    intents = message_intents()
    intents.members = True  # members intent: discord.py chunks the guild (op 8)
    client = discord.Client(intents=intents)
    await running.start(client)
    await client.wait_until_ready()

    (guild,) = client.guilds
    simulated = sim.guild(0)
    assert guild.id == simulated.id
    assert {c.name for c in guild.text_channels} == {"general", "bot-commands"}
    assert guild.chunked
    assert guild.member_count == len(simulated.members) == len(guild.members)
    assert any(op.name == "REQUEST_GUILD_MEMBERS" for op in sim.gateway_ops)


async def test_a_stopped_simulator_is_freed() -> None:
    """Load tests, benchmarks and test suites start simulator after simulator: once
    one has served a bot and stopped, nothing in the process keeps it (aiohttp's
    middleware cache did, with its whole call log, until 100 more had run)."""
    async with Simulator() as simulator:
        with simulator.redirect():
            bot = commands.Bot(command_prefix="!", intents=message_intents())

            @bot.command()
            async def ping(ctx: commands.Context[commands.Bot]) -> None:
                await ctx.send("pong")

            running = RunningBot(simulator)
            try:
                await running.start(bot)
                calls = await simulator.send_message("!ping")
            finally:
                await running.close()
    assert [c.json["content"] for c in calls if c.method == "POST"] == ["pong"]
    stopped = weakref.ref(simulator)
    del simulator, calls, running, bot, ping
    gc.collect()
    assert stopped() is None
