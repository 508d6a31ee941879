"""Micro-benchmark of discord-otel's gateway hot path (no network).

Pre-built gateway payloads are fed straight into discord.py's
``DiscordWebSocket.received_message`` of a real ``commands.Bot`` (its real
``ConnectionState``, an ``on_message`` listener plus the Bot's own
command-processing ``on_message``), and the listener tasks are drained, in
three modes:

- ``off``: no instrumentation;
- ``metrics``: ``DiscordInstrumentor`` with metrics only (NoOp tracer provider);
- ``traces``: traces and metrics, SDK ``TracerProvider`` sampling 100% with a
  ``BatchSpanProcessor`` to an exporter that drops everything.

Rounds are interleaved (off, metrics, traces, off, ...) and each mode's median
events/second is compared with ``off``. Run::

    .venv/bin/python benchmarks/micro_hot_path.py [--events 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import discord
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider

GUILD_ID = 111111111111111111
CHANNEL_ID = 222222222222222222
BOT_ID = 333333333333333333
USER_ID = 444444444444444444


class _DropExporter(SpanExporter):
    def __init__(self) -> None:
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.count += len(spans)
        return SpanExportResult.SUCCESS


class _FakeSocket:
    closed = False

    close_code = None

    async def send_str(self, data: str) -> None:
        return None

    async def close(self, *, code: int = 1000) -> bool:
        self.closed = True
        return True


def _user(uid: int, name: str, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(uid),
        "username": name,
        "discriminator": "0",
        "global_name": name,
        "avatar": None,
        "bot": bot,
    }


def _guild_payload() -> dict[str, Any]:
    return {
        "id": str(GUILD_ID),
        "name": "bench",
        "icon": None,
        "owner_id": str(USER_ID),
        "roles": [
            {
                "id": str(GUILD_ID),
                "name": "@everyone",
                "permissions": "0",
                "position": 0,
                "color": 0,
                "hoist": False,
                "managed": False,
                "mentionable": False,
            }
        ],
        "emojis": [],
        "stickers": [],
        "features": [],
        "member_count": 2,
        "members": [
            {
                "user": _user(USER_ID, "alice"),
                "roles": [],
                "joined_at": "2024-01-01T00:00:00+00:00",
                "flags": 0,
                "deaf": False,
                "mute": False,
            },
            {
                "user": _user(BOT_ID, "bot", True),
                "roles": [],
                "joined_at": "2024-01-01T00:00:00+00:00",
                "flags": 0,
                "deaf": False,
                "mute": False,
            },
        ],
        "channels": [
            {
                "id": str(CHANNEL_ID),
                "type": 0,
                "name": "general",
                "position": 0,
                "permission_overwrites": [],
                "guild_id": str(GUILD_ID),
            }
        ],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "large": False,
        "unavailable": False,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "nsfw_level": 0,
    }


def message_create(seq: int, content: str = "hello there") -> str:
    data = {
        "id": str(900000000000000000 + seq),
        "channel_id": str(CHANNEL_ID),
        "guild_id": str(GUILD_ID),
        "author": _user(USER_ID, "alice"),
        "member": {
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "flags": 0,
            "deaf": False,
            "mute": False,
        },
        "content": content,
        "timestamp": "2024-01-01T00:00:00+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
    }
    return json.dumps({"op": 0, "t": "MESSAGE_CREATE", "s": seq, "d": data})


def presence_update(seq: int) -> str:
    data = {
        "user": {"id": str(USER_ID)},
        "guild_id": str(GUILD_ID),
        "status": "online" if seq % 2 else "idle",
        "activities": [],
        "client_status": {"desktop": "online"},
    }
    return json.dumps({"op": 0, "t": "PRESENCE_UPDATE", "s": seq, "d": data})


def typing_start(seq: int) -> str:
    data = {
        "channel_id": str(CHANNEL_ID),
        "guild_id": str(GUILD_ID),
        "user_id": str(USER_ID),
        "timestamp": 1700000000,
        "member": {
            "user": _user(USER_ID, "alice"),
            "roles": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "flags": 0,
            "deaf": False,
            "mute": False,
        },
    }
    return json.dumps({"op": 0, "t": "TYPING_START", "s": seq, "d": data})


def command_message(seq: int) -> str:
    return message_create(seq, "!ping")


async def build_bot(with_command: bool) -> tuple[commands.Bot, DiscordWebSocket]:
    """A Bot with an on_message listener wired to a websocket that is not connected."""
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all(), help_command=None)
    seen = [0]

    @bot.listen("on_message")
    async def count_messages(message: discord.Message) -> None:
        seen[0] += 1

    if with_command:

        @bot.command()
        async def ping(ctx: commands.Context[commands.Bot]) -> None:
            seen[0] += 1

    await bot._async_setup_hook()
    state = bot._connection
    state.user = discord.ClientUser(state=state, data=_user(BOT_ID, "bot", True))  # type: ignore[arg-type]
    ws = DiscordWebSocket(_FakeSocket(), loop=asyncio.get_running_loop())  # type: ignore[arg-type]
    ws.token = "bench"  # type: ignore[attr-defined]
    ws._connection = state  # type: ignore[attr-defined]
    ws._discord_parsers = state.parsers
    ws._dispatch = bot.dispatch
    ws.call_hooks = state.call_hooks  # type: ignore[attr-defined]
    ws._initial_identify = False  # type: ignore[attr-defined]
    ws.shard_id = None  # type: ignore[attr-defined]
    ws.shard_count = None  # type: ignore[attr-defined]
    ws.session_id = "bench"
    ws.sequence = 0
    state._update_references(ws)
    bot.ws = ws
    state._add_guild_from_data(_guild_payload())  # type: ignore[arg-type]
    return bot, ws


async def feed(ws: DiscordWebSocket, payloads: list[str]) -> float:
    """Seconds of this process's CPU time to handle ``payloads`` (robust to a busy host)."""
    received = ws.received_message
    start = time.process_time()
    for index, payload in enumerate(payloads):
        await received(payload)
        if index % 64 == 63:
            await asyncio.sleep(0)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return time.process_time() - start


class Mode:
    def __init__(self, name: str) -> None:
        self.name = name
        self.instrumentor: Any = None
        self.exporter: _DropExporter | None = None
        self.tracer_provider: Any = None
        self.meter_provider: MeterProvider | None = None
        self.reader: InMemoryMetricReader | None = None

    def setup(self) -> None:
        if self.name == "off":
            return
        from discord_otel.instrumentation import DiscordInstrumentor

        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        if self.name == "metrics":
            self.tracer_provider = NoOpTracerProvider()
        else:
            self.exporter = _DropExporter()
            self.tracer_provider = TracerProvider()
            self.tracer_provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.instrumentor = DiscordInstrumentor()
        self.instrumentor.instrument(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def teardown(self) -> None:
        if self.instrumentor is not None:
            assert self.reader is not None
            self.reader.get_metrics_data()  # a collection, as a reader would do
            self.instrumentor.uninstrument()
            self.instrumentor = None
        if isinstance(self.tracer_provider, TracerProvider):
            self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


async def run_round(mode: Mode, make: Callable[[int], str], events: int, command: bool) -> float:
    mode.setup()
    try:
        bot, ws = await build_bot(command)
        payloads = [make(i) for i in range(1, events + 1)]
        await feed(ws, payloads[: min(500, events)])  # warm up
        gc.collect()
        elapsed = await feed(ws, payloads)
        await bot.close()
        return events / elapsed
    finally:
        mode.teardown()


async def bench(
    name: str, make: Callable[[int], str], events: int, rounds: int, command: bool
) -> None:
    modes = [Mode("off"), Mode("metrics"), Mode("traces")]
    results: dict[str, list[float]] = {m.name: [] for m in modes}
    for _ in range(rounds):
        for mode in modes:
            results[mode.name].append(await run_round(mode, make, events, command))
    base = statistics.median(results["off"])
    line = [f"{name:<16} off {base:>9.0f} ev/s"]
    for mode_name in ("metrics", "traces"):
        median = statistics.median(results[mode_name])
        line.append(f"{mode_name} {median:>9.0f} ev/s ratio {median / base:.3f}")
    print(" | ".join(line), flush=True)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--only", choices=["message", "presence", "typing", "command"], action="append"
    )
    args = parser.parse_args(argv)
    cases = {
        "message": (message_create, False),
        "presence": (presence_update, False),
        "typing": (typing_start, False),
        "command": (command_message, True),
    }
    for name in args.only or list(cases):
        make, command = cases[name]
        await bench(name, make, args.events, args.rounds, command)


if __name__ == "__main__":
    asyncio.run(main())
