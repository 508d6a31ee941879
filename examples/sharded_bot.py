"""An example AutoShardedClient: Discord (or the simulator) decides the shard count.

Run it against the simulator with

    discord-otel simulate --shards 2 --scenario examples/scenarios/sharded.yaml \
        -- python examples/sharded_bot.py
"""

from __future__ import annotations

import logging
import os

import discord

log = logging.getLogger("sharded_bot")


class ShardedBot(discord.AutoShardedClient):
    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(intents=intents)

    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("shard %d ready", shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        log.info("shard %d resumed", shard_id)

    async def on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.guild is None:
            return
        if message.content == "!shard":
            await message.channel.send(
                f"This guild is on shard {message.guild.shard_id} of {self.shard_count}."
            )


def main() -> None:
    token = os.environ.get("DISCORD_TOKEN")
    if not token:
        raise SystemExit("Set DISCORD_TOKEN (or run under `discord-otel simulate`).")
    ShardedBot().run(token, root_logger=True)


if __name__ == "__main__":
    main()
