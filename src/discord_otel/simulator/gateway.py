"""The simulated gateway: a websocket speaking Discord's gateway protocol.

HELLO, IDENTIFY -> READY + GUILD_CREATE (per shard), heartbeats and their ACKs,
RESUME -> replay + RESUMED, op 7 RECONNECT and op 9 INVALID_SESSION on demand,
GUILD_MEMBERS_CHUNK for op 8, and dispatches of any event. Plain JSON and
``zlib-stream`` transports are both served.

Dispatches are serialised once and queued per connection; a writer task sends
everything queued in one write, which is what lets one process push thousands
of events per second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import struct
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from discord_otel.simulator.state import JSON, SimulatorState, shard_for_guild

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41250
# Events kept per session for RESUME replay; older ones are dropped like Discord does.
REPLAY_BACKLOG = 2048
# Above this many buffered bytes the writer waits for the socket to drain.
HIGH_WATER_BYTES = 1 << 20

OP_NAMES = {
    0: "DISPATCH",
    1: "HEARTBEAT",
    2: "IDENTIFY",
    3: "PRESENCE_UPDATE",
    4: "VOICE_STATE_UPDATE",
    6: "RESUME",
    7: "RECONNECT",
    8: "REQUEST_GUILD_MEMBERS",
    9: "INVALID_SESSION",
    10: "HELLO",
    11: "HEARTBEAT_ACK",
}


@dataclass(frozen=True)
class GatewayOp:
    """One opcode the bot sent to the gateway (what tests assert on)."""

    shard_id: int
    op: int

    @property
    def name(self) -> str:
        return OP_NAMES.get(self.op, str(self.op))


def _ws_frame(payload: bytes, opcode: int) -> bytes:
    """A final, unmasked websocket frame (server to client frames are never masked)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


class Connection:
    """One websocket connection and its outgoing queue."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, compress: bool) -> None:
        self.ws = ws
        self._transport = request.transport
        self._compressor = zlib.compressobj() if compress else None
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._writer = asyncio.create_task(self._write_loop(), name="simulator-gateway-writer")
        self.closed = False

    def send(self, frame: str) -> None:
        if self.closed:
            return
        self._outbox.append(frame)
        self._idle.clear()
        self._wake.set()

    def _encode(self, frame: str) -> bytes:
        data = frame.encode()
        if self._compressor is None:
            return _ws_frame(data, 0x1)
        compressed = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        return _ws_frame(compressed, 0x2)

    async def _write_loop(self) -> None:
        while not self.closed:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox and not self.closed:
                transport = self._transport
                if transport is None or transport.is_closing():
                    self.closed = True
                    return
                # Everything queued goes out in one write: the bulk of the load-test win.
                batch = [
                    self._encode(self._outbox.popleft()) for _ in range(min(len(self._outbox), 512))
                ]
                transport.write(b"".join(batch))
                # asyncio transports offer no "drained" wait to await, hence the poll.
                while (  # noqa: ASYNC110
                    transport.get_write_buffer_size() > HIGH_WATER_BYTES
                    and not transport.is_closing()
                ):
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0)
            self._idle.set()

    async def flush(self, timeout: float = 2.0) -> None:
        """Wait until everything queued has been handed to the socket."""
        if not self.closed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)

    def drop(self) -> None:
        """Cut the TCP connection without a websocket close handshake."""
        self.closed = True
        self._wake.set()
        self._writer.cancel()
        if self._transport is not None:
            self._transport.abort()

    async def close(self, code: int = 1000) -> None:
        await self.flush()
        self.closed = True
        self._wake.set()
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        with contextlib.suppress(Exception):
            await self.ws.close(code=code)


@dataclass
class Session:
    """A gateway session: survives its connection so that RESUME can pick it up."""

    session_id: str
    shard_id: int
    shard_count: int
    intents: int
    seq: int = 0
    backlog: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=REPLAY_BACKLOG))
    connection: Connection | None = None

    def frame(self, event: str, data_json: str) -> str:
        self.seq += 1
        frame = f'{{"op":0,"s":{self.seq},"t":"{event}","d":{data_json}}}'
        self.backlog.append((self.seq, frame))
        return frame


class Gateway:
    """All shards' sessions, and the websocket handler that serves them."""

    def __init__(self, state: SimulatorState, base_url: Callable[[], str]) -> None:
        self.state = state
        self._base_url = base_url
        self.sessions: dict[str, Session] = {}
        self.live: dict[int, Session] = {}  # shard id -> the session being served
        self.ops: list[GatewayOp] = []
        self.ready_changed = asyncio.Event()
        self.connections: set[Connection] = set()
        self.dispatched = 0

    # -- what the rest of the simulator uses -----------------------------------

    @property
    def shard_count(self) -> int:
        """How many shards the bot identified with (0 before the first IDENTIFY)."""
        return max((session.shard_count for session in self.live.values()), default=0)

    def all_ready(self) -> bool:
        count = self.shard_count
        return count > 0 and all(
            shard in self.live and self.live[shard].connection is not None for shard in range(count)
        )

    def session_for_guild(self, guild_id: int) -> Session | None:
        count = self.shard_count
        if count == 0:
            return None
        return self.live.get(shard_for_guild(guild_id, count))

    def dispatch(
        self, event: str, data: Any, *, shard: int | None = None, guild_id: int | None = None
    ) -> bool:
        """Send a dispatch to one shard (by number, or the guild's shard). False if none is up."""
        return self.dispatch_json(
            event, json.dumps(data, separators=(",", ":")), shard=shard, guild_id=guild_id
        )

    def dispatch_json(
        self, event: str, data_json: str, *, shard: int | None = None, guild_id: int | None = None
    ) -> bool:
        """As :meth:`dispatch`, with the payload already serialised (the fast path)."""
        if shard is None:
            session = self.session_for_guild(guild_id) if guild_id is not None else self.live.get(0)
        else:
            session = self.live.get(shard)
        if session is None:
            return False
        frame = session.frame(event, data_json)
        if session.connection is not None:
            session.connection.send(frame)
        self.dispatched += 1
        return True

    async def force_reconnect(self, shard: int, kind: str) -> None:
        """Make a shard reconnect: ``resume`` (op 7), ``invalid_session`` (op 9) or ``close``."""
        session = self.live.get(shard)
        if session is None or session.connection is None:
            raise RuntimeError(f"shard {shard} is not connected")
        connection = session.connection
        if kind == "resume":
            connection.send('{"op":7,"d":null}')
        elif kind == "invalid_session":
            connection.send('{"op":9,"d":false}')
        elif kind == "close":
            # An abrupt drop mid-run: the client must reconnect and RESUME on its own.
            session.connection = None
            connection.drop()
            return
        else:
            raise ValueError(
                f"unknown reconnect kind {kind!r}: expected resume, invalid_session or close"
            )
        await connection.flush()

    async def close(self) -> None:
        for connection in list(self.connections):
            await connection.close(code=1001)

    # -- the websocket ----------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        # Discord does not negotiate permessage-deflate; it would only cost CPU here.
        ws = web.WebSocketResponse(compress=False, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress", "") == "zlib-stream"
        connection = Connection(ws, request, compress)
        self.connections.add(connection)
        session: Session | None = None
        hello = {
            "op": 10,
            "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["simulator"]},
        }
        connection.send(json.dumps(hello))
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                op = int(payload.get("op", -1))
                if op == 1:
                    connection.send('{"op":11,"d":null}')
                elif op == 2:
                    session = self._identify(connection, payload["d"])
                elif op == 6:
                    session = self._resume(connection, payload["d"])
                elif op == 8 and session is not None:
                    self._request_members(session, payload["d"])
                # Recorded once handled, so that IDENTIFY and RESUME carry their shard.
                self.ops.append(GatewayOp(session.shard_id if session else 0, op))
        except Exception:  # a broken client must never take the simulator down
            logger.exception("simulator gateway connection failed")
        finally:
            connection.closed = True
            self.connections.discard(connection)
            if session is not None and session.connection is connection:
                session.connection = None
                self.ready_changed.set()
            await connection.close()
        return ws

    def _identify(self, connection: Connection, data: JSON) -> Session:
        shard = data.get("shard") or [0, 1]
        shard_id, shard_count = shard[0], shard[1]
        session = Session(
            secrets.token_hex(16), int(shard_id), int(shard_count), int(data.get("intents", 0))
        )
        old = self.live.get(session.shard_id)
        if old is not None and old.connection is not None and old.connection is not connection:
            old.connection.send('{"op":9,"d":false}')
        self.sessions[session.session_id] = session
        session.connection = connection
        self.live[session.shard_id] = session
        guilds = [
            g
            for g in self.state.guilds
            if shard_for_guild(g.id, session.shard_count) == session.shard_id
        ]
        ready = {
            "v": 10,
            "user": {
                **self.state.bot_user.payload(),
                "verified": True,
                "mfa_enabled": False,
                "flags": 0,
            },
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self._base_url().replace("http", "ws", 1) + "/gateway",
            "shard": [session.shard_id, session.shard_count],
            "application": {"id": str(self.state.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "user_settings": {},
            "geo_ordered_rtc_regions": ["local"],
            "_trace": ["simulator"],
        }
        connection.send(session.frame("READY", json.dumps(ready)))
        for guild in guilds:
            connection.send(session.frame("GUILD_CREATE", json.dumps(guild.payload())))
        self.ready_changed.set()
        return session

    def _resume(self, connection: Connection, data: JSON) -> Session | None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            connection.send('{"op":9,"d":false}')
            return None
        previous = session.connection
        if previous is not None and previous is not connection:
            previous.closed = True
        last_seen = int(data.get("seq") or 0)
        session.connection = connection
        self.live[session.shard_id] = session
        for seq, frame in list(session.backlog):
            if seq > last_seen:
                connection.send(frame)
        connection.send(session.frame("RESUMED", '{"_trace":["simulator"]}'))
        self.ready_changed.set()
        return session

    def _request_members(self, session: Session, data: JSON) -> None:
        guild_ids = data.get("guild_id")
        for guild_id in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            try:
                guild = self.state.guild(int(str(guild_id)))
            except (KeyError, TypeError, ValueError):
                continue
            query = str(data.get("query") or "").lower()
            user_ids = {int(u) for u in data.get("user_ids") or []}
            members = [
                m
                for m in guild.members
                if (not user_ids or m.user.id in user_ids)
                and m.user.username.lower().startswith(query)
            ]
            limit = int(data.get("limit") or 0)
            if limit:
                members = members[:limit]
            chunk: JSON = {
                "guild_id": str(guild.id),
                "members": [m.payload() for m in members],
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
            }
            if data.get("presences"):
                chunk["presences"] = []
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            if session.connection is not None:
                session.connection.send(session.frame("GUILD_MEMBERS_CHUNK", json.dumps(chunk)))
