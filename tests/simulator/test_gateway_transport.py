"""The gateway protocol on the wire, plain JSON and zlib-stream."""

from __future__ import annotations

import json
import zlib
from typing import Any

import aiohttp
import pytest

from discord_otel.simulator import Simulator


class RawGateway:
    """A minimal gateway client, decoding frames as discord.py does."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, compressed: bool) -> None:
        self.ws = ws
        self.inflate = zlib.decompressobj() if compressed else None

    async def receive(self) -> dict[str, Any]:
        message = await self.ws.receive(timeout=5)
        if self.inflate is None:
            assert message.type is aiohttp.WSMsgType.TEXT
            return dict(json.loads(message.data))
        assert message.type is aiohttp.WSMsgType.BINARY
        assert message.data.endswith(b"\x00\x00\xff\xff")  # one Z_SYNC_FLUSH per message
        return dict(json.loads(self.inflate.decompress(message.data)))

    async def until(self, event: str) -> dict[str, Any]:
        for _ in range(20):
            payload = await self.receive()
            if payload.get("t") == event:
                return payload
        raise AssertionError(f"no {event}")


@pytest.mark.parametrize("compress", [False, True], ids=["json", "zlib-stream"])
async def test_identify_ready_dispatch_and_resume(compress: bool) -> None:
    query = "?v=10&encoding=json" + ("&compress=zlib-stream" if compress else "")
    async with Simulator(guilds=2) as sim, aiohttp.ClientSession() as http:
        url = sim.url.replace("http", "ws") + "/gateway" + query
        async with http.ws_connect(url) as ws:
            gateway = RawGateway(ws, compress)
            hello = await gateway.receive()
            assert hello["op"] == 10
            assert hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 1, "d": None})
            assert (await gateway.receive())["op"] == 11
            await ws.send_json(
                {"op": 2, "d": {"token": "anything", "intents": 513, "properties": {}}}
            )
            ready = await gateway.receive()
            assert ready["t"] == "READY"
            assert ready["d"]["resume_gateway_url"].startswith("ws://127.0.0.1:")
            assert ready["d"]["application"]["id"] == str(sim.state.application_id)
            assert len(ready["d"]["guilds"]) == 2
            guild = (await gateway.until("GUILD_CREATE"))["d"]
            assert {c["name"] for c in guild["channels"]} == {"general", "bot-commands"}
            await sim.send_message("hi", wait=False)
            created = await gateway.until("MESSAGE_CREATE")
            session_id, last_seq = ready["d"]["session_id"], created["s"]

        await sim.send_message("while away", wait=False)  # queued for the replay
        async with http.ws_connect(url) as ws:
            gateway = RawGateway(ws, compress)
            await gateway.receive()  # HELLO
            await ws.send_json({"op": 6, "d": {"session_id": session_id, "seq": last_seq}})
            replayed = await gateway.receive()
            assert replayed["t"] == "MESSAGE_CREATE"
            assert replayed["d"]["content"] == "while away"
            assert replayed["s"] == last_seq + 1
            assert (await gateway.receive())["t"] == "RESUMED"
