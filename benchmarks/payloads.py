"""Gateway payloads for the three workloads, built from the simulator's own state.

The same event data goes over loopback (path a: the simulator sends it) and
straight into ``DiscordWebSocket.received_message`` (path b: a frame string
the bot feeds itself), so the two paths differ only by the transport.
"""

from __future__ import annotations

import json
from typing import Any

from discord_otel.simulator import Simulator

APPLICATION_COMMAND = 2
CHAT_INPUT = 1
COMMAND_ID = 1_300_000_000_000_000_001  # discord.py looks slash commands up by name

W1_TEXT = "just chatting about the weather, nothing for the bot here"


def _humans(sim: Simulator) -> list[Any]:
    """The guild's members that are not bots (the bot ignores bots' messages)."""
    return [member for member in sim.guild(0).members if not member.user.bot]


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def frame(event: str, data_json: str) -> str:
    """A dispatch as the gateway sends it (``s`` null: the live session's seq stays as is)."""
    return f'{{"op":0,"s":null,"t":"{event}","d":{data_json}}}'


def w1_events(sim: Simulator, count: int) -> list[tuple[str, str]]:
    """MESSAGE_CREATE from the members in the first text channel; no command prefix."""
    guild = sim.guild(0)
    channel = guild.text_channel
    members = _humans(sim)
    out = []
    for index in range(count):
        member = members[index % len(members)]
        data = sim.state.message_payload(
            channel=channel, author=member.user, content=f"{W1_TEXT} #{index}"
        )
        out.append(("MESSAGE_CREATE", _dumps(data)))
    return out


def w3_events(sim: Simulator, count: int) -> list[tuple[str, str]]:
    """Alternating PRESENCE_UPDATE and TYPING_START from the guild's members."""
    guild = sim.guild(0)
    channel = guild.text_channel
    members = _humans(sim)
    out = []
    for index in range(count):
        member = members[index % len(members)]
        if index % 2 == 0:
            data: dict[str, Any] = {
                "user": {"id": str(member.user.id)},
                "guild_id": str(guild.id),
                "status": ("online", "idle", "dnd")[index % 3],
                "activities": [{"name": "a game", "type": 0, "created_at": 1700000000000 + index}],
                "client_status": {"desktop": "online"},
            }
            out.append(("PRESENCE_UPDATE", _dumps(data)))
        else:
            data = {
                "channel_id": str(channel.id),
                "guild_id": str(guild.id),
                "user_id": str(member.user.id),
                "timestamp": 1700000000 + index,
                "member": member.payload(),
            }
            out.append(("TYPING_START", _dumps(data)))
    return out


def w2_kind(index: int) -> tuple[str, str]:
    """(``prefix``|``slash``, command name): half prefix, half slash, one in ten ``db``."""
    kind = "prefix" if index % 2 == 0 else "slash"
    name = "db" if index % 20 in (4, 9) else "ping"
    return kind, name


def w2_events(sim: Simulator, count: int) -> list[tuple[str, str]]:
    """Prefix commands as MESSAGE_CREATE, slash commands as INTERACTION_CREATE.

    Each interaction is registered with the simulator, so the bot's callback
    is answered as a real one would be.
    """
    guild = sim.guild(0)
    channel = guild.text_channel
    author = _humans(sim)[0].user
    out = []
    for index in range(count):
        kind, name = w2_kind(index)
        if kind == "prefix":
            data = sim.state.message_payload(channel=channel, author=author, content="!" + name)
            out.append(("MESSAGE_CREATE", _dumps(data)))
        else:
            pending = sim.state.new_interaction(APPLICATION_COMMAND, guild, name)
            command = {"id": str(COMMAND_ID), "name": name, "type": CHAT_INPUT, "options": []}
            payload = sim.state.interaction_payload(pending, command)
            out.append(("INTERACTION_CREATE", _dumps(payload)))
    return out


BUILDERS = {"W1": w1_events, "W2": w2_events, "W3": w3_events}


def feeds(sim: Simulator, counts: dict[str, int]) -> dict[str, list[str]]:
    """Frame strings per feed name (``W1``, ``warmW1``...) for the in-process path."""
    return {
        name: [frame(event, data) for event, data in BUILDERS[name[-2:]](sim, count)]
        for name, count in counts.items()
        if count > 0
    }
