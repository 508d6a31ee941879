"""An example discord.py bot: the one the discord-otel README, demo and tests use.

It has nothing to do with OpenTelemetry beyond one custom span: discord-otel
instruments it from the outside. Run it against the local simulator with

    discord-otel simulate --scenario examples/scenarios/tour.yaml -- python examples/bot.py

or against Discord with a real DISCORD_TOKEN. With DATABASE_URL set (and
asyncpg installed) it also records pings in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands, tasks
from opentelemetry import trace

log = logging.getLogger("example_bot")
tracer = trace.get_tracer(__name__)

COLOURS = ["red", "green", "blue"]
GREETINGS = ["hello", "hey", "hi", "howdy", "good morning"]


class MenuView(discord.ui.View):
    """A confirm button and a colour select."""

    def __init__(self) -> None:
        super().__init__(timeout=300)

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.green, custom_id="confirm")
    async def confirm(
        self, interaction: discord.Interaction, button: discord.ui.Button[Any]
    ) -> None:
        await interaction.response.send_message("Confirmed!", ephemeral=True)

    @discord.ui.select(
        custom_id="colour",
        placeholder="Pick a colour",
        options=[discord.SelectOption(label=colour, value=colour) for colour in COLOURS],
    )
    async def colour(
        self, interaction: discord.Interaction, select: discord.ui.Select[Any]
    ) -> None:
        await interaction.response.send_message(f"You picked {', '.join(select.values)}.")


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    answer: discord.ui.TextInput[Any] = discord.ui.TextInput(
        label="What do you think of the bot?", custom_id="answer", max_length=200
    )

    def __init__(self) -> None:
        super().__init__(custom_id="feedback")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Thanks for your feedback: {self.answer.value}")


class ExampleBot(commands.Bot):
    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(command_prefix="!", intents=intents)
        self.messages_seen = 0
        self.heartbeats = 0
        self.db: Any = None  # an asyncpg pool when DATABASE_URL is set

    async def setup_hook(self) -> None:
        if os.environ.get("DATABASE_URL"):
            import asyncpg

            self.db = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=4)
            await self.db.execute("CREATE TABLE IF NOT EXISTS pings (at timestamptz NOT NULL)")
        await self.add_cog(General(self))
        self.tree.add_command(config)
        self.tree.add_command(inspect)
        self.tree.add_command(quote)
        self.tree.on_error = self.on_app_command_error
        await self.tree.sync()
        self.heartbeat.start()

    async def close(self) -> None:
        self.heartbeat.cancel()
        if self.db is not None:
            await self.db.close()
        await super().close()

    @tasks.loop(seconds=30)
    async def heartbeat(self) -> None:
        """A periodic job, like refreshing a cache."""
        self.heartbeats += 1
        log.info(
            "heartbeat %d: %d guilds, %d messages seen",
            self.heartbeats,
            len(self.guilds),
            self.messages_seen,
        )

    async def on_ready(self) -> None:
        log.info("logged in as %s in %d guilds", self.user, len(self.guilds))

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot:
            return
        self.messages_seen += 1
        if message.content.lower().startswith("hello"):
            await message.add_reaction("\N{WAVING HAND SIGN}")
        await self.process_commands(message)

    async def on_command_error(
        self, ctx: commands.Context[Any], error: commands.CommandError
    ) -> None:
        if isinstance(error, commands.CommandNotFound):
            return
        if isinstance(error, commands.CheckFailure):
            await ctx.send("You are not allowed to do that.")
            return
        log.error("command %s failed", ctx.command, exc_info=error)
        await ctx.send("Something went wrong, sorry.")

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("app command failed", exc_info=error)
        send = (
            interaction.followup.send
            if interaction.response.is_done()
            else interaction.response.send_message
        )
        await send("Something went wrong, sorry.", ephemeral=True)


class General(commands.Cog):
    def __init__(self, bot: ExampleBot) -> None:
        self.bot = bot

    @commands.command()
    async def ping(self, ctx: commands.Context[ExampleBot]) -> None:
        """Prefix only: !ping"""
        if self.bot.db is not None:
            await self.bot.db.execute("INSERT INTO pings (at) VALUES (now())")
        await ctx.send(f"pong ({self.bot.latency * 1000:.0f} ms)")

    @commands.hybrid_command()
    async def roll(self, ctx: commands.Context[ExampleBot], sides: int = 6) -> None:
        """Hybrid: !roll 20 or /roll sides:20"""
        with tracer.start_as_current_span("roll dice") as span:
            span.set_attribute("dice.sides", sides)
            result = random.randint(1, max(sides, 1))
        await ctx.send(f"You rolled {result} (d{sides}).")

    @commands.hybrid_command()
    async def slow(self, ctx: commands.Context[ExampleBot]) -> None:
        """A command that takes a while: deferred, then answered."""
        await ctx.defer()
        await asyncio.sleep(1.5)
        await ctx.send("Done, that took a while.")

    @commands.command()
    async def announce(self, ctx: commands.Context[ExampleBot], *, text: str) -> None:
        """Posts through a webhook (ANNOUNCE_WEBHOOK_URL) with the bot's own HTTP session."""
        url = os.environ.get("ANNOUNCE_WEBHOOK_URL")
        if url is None:
            await ctx.send("No announcement webhook is configured.")
            return
        async with aiohttp.ClientSession() as session:
            webhook = discord.Webhook.from_url(url, session=session)
            await webhook.send(text, username="Announcements")
        await ctx.send("Announced.")

    @commands.command()
    async def fail(self, ctx: commands.Context[ExampleBot]) -> None:
        """Always raises: the error path (with a database, a query that fails)."""
        if self.bot.db is not None:
            await self.bot.db.fetch("SELECT * FROM no_such_table")
        raise RuntimeError("this command always fails")

    @commands.command()
    @commands.has_role("Admin")
    async def admin(self, ctx: commands.Context[ExampleBot]) -> None:
        """Guarded by a check nobody passes in the simulator (no one has "Admin")."""
        await ctx.send("Welcome, admin.")

    @commands.hybrid_command()
    async def menu(self, ctx: commands.Context[ExampleBot]) -> None:
        """Sends a button and a select menu."""
        await ctx.send("Confirm, or pick a colour:", view=MenuView())

    @app_commands.command()
    async def feedback(self, interaction: discord.Interaction) -> None:
        """Opens a feedback form."""
        await interaction.response.send_modal(FeedbackModal())

    @app_commands.command()
    @app_commands.describe(text="What to say back")
    async def echo(self, interaction: discord.Interaction, text: str) -> None:
        """Says something back."""
        await interaction.response.send_message(text)

    @echo.autocomplete("text")
    async def echo_suggestions(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=greeting, value=greeting)
            for greeting in GREETINGS
            if greeting.startswith(current.lower())
        ]


config = app_commands.Group(name="config", description="Bot settings")


@config.command(name="set")
async def config_set(interaction: discord.Interaction, key: str, value: str) -> None:
    """Sets a setting."""
    await interaction.response.send_message(f"Set {key} to {value}.", ephemeral=True)


@app_commands.context_menu(name="Inspect")
async def inspect(interaction: discord.Interaction, member: discord.Member) -> None:
    await interaction.response.send_message(
        f"{member.display_name} joined on {member.joined_at:%Y-%m-%d}.", ephemeral=True
    )


@app_commands.context_menu(name="Quote")
async def quote(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.send_message(f"> {message.content}\n— {message.author.display_name}")


def main() -> None:
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit("Set DISCORD_TOKEN (or run under `discord-otel simulate`).")
    ExampleBot().run(token, root_logger=True)


if __name__ == "__main__":
    main()
