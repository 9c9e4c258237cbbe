"""The gateway websocket: HELLO, IDENTIFY -> READY + GUILD_CREATE, heartbeats, RESUME, dispatch.

https://discord.com/developers/docs/events/gateway#connection-lifecycle. Frames are plain JSON text:
discord.py asks for zlib/zstd transport compression but only decompresses binary frames.

Sharding (https://discord.com/developers/docs/events/gateway#sharding): a session that identified
with ``shard: [id, count]`` gets only the events of guilds where ``(guild_id >> 22) % count == id``,
and events without a guild (DMs) only on shard 0. A session without ``shard`` gets everything.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from .builders import ready_json

if TYPE_CHECKING:
    from .server import FakeDiscord

log = logging.getLogger(__name__)

# https://discord.com/developers/docs/topics/opcodes-and-status-codes#gateway-gateway-opcodes
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, REQUEST_MEMBERS, INVALID_SESSION, HELLO, ACK = (
    0, 1, 2, 6, 7, 8, 9, 10, 11)
HEARTBEAT_INTERVAL_MS = 41_250

# https://discord.com/developers/docs/events/gateway#gateway-intents
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
GUILD_MESSAGE_REACTIONS = 1 << 10
DIRECT_MESSAGES = 1 << 12
DIRECT_MESSAGE_REACTIONS = 1 << 13
MESSAGE_CONTENT = 1 << 15


class GatewaySession:
    """One websocket connection from the bot."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.seq = 0
        self.session_id: str | None = None
        self.intents = 0
        self.identified = False
        self.shard: tuple[int, int] | None = None  # (shard id, shard count) from IDENTIFY
        self.events: list[str] = []  # dispatched event names, in order
        self.lock = asyncio.Lock()

    def receives(self, guild_id: int | None) -> bool:
        """Whether this session's shard gets the events of ``guild_id`` (None: a DM)."""
        if self.shard is None:
            return True
        shard_id, count = self.shard
        return shard_id == (0 if guild_id is None else shard_for(guild_id, count))

    async def send(self, payload: dict[str, Any]) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        async with self.lock:
            if self.ws.closed:
                return
            self.seq += 1
            self.events.append(event)
            await self.ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": self.seq, "d": data}))


def shard_for(guild_id: int, shard_count: int) -> int:
    """https://discord.com/developers/docs/events/gateway#sharding-sharding-formula"""
    return (guild_id >> 22) % shard_count


class Gateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: list[GatewaySession] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes = 0
        self.connections = 0
        self.heartbeats = 0
        self.identified = asyncio.Event()
        self._sequences: dict[str, int] = {}  # session id -> last seq, for RESUME
        self._shards: dict[str, tuple[int, int] | None] = {}  # session id -> its shard, for RESUME

    @property
    def intents(self) -> int:
        return self.identifies[-1]["intents"] if self.identifies else 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections += 1
        session = GatewaySession(ws)
        self.sessions.append(session)
        self.fake.log_request("GET", "/gateway", 101)
        await session.send({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                await self._on_frame(session, json.loads(msg.data))
        finally:
            if session.session_id:
                self._sequences[session.session_id] = session.seq
            self.sessions.remove(session)
            self.fake.changed()
        return ws

    async def _on_frame(self, session: GatewaySession, frame: dict[str, Any]) -> None:
        op, d = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            self.heartbeats += 1
            await session.send({"op": ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            shard = d.get("shard")
            if shard is not None and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
                await session.ws.close(code=4010)  # Invalid shard
                return
            self.identifies.append(d)
            session.intents = int(d.get("intents", 0))
            session.session_id = secrets.token_hex(16)
            session.shard = (int(shard[0]), int(shard[1])) if shard is not None else None
            self._shards[session.session_id] = session.shard
            world = self.fake.world
            owned = [guild_id for guild_id in world.guild_owners if session.receives(guild_id)]
            await session.dispatch("READY", ready_json(self.fake, session.session_id, shard=session.shard,
                                                       guilds=owned))
            for guild_id in owned:
                guild = world.guild_json(all_members=bool(session.intents & GUILD_MEMBERS), guild_id=guild_id)
                await session.dispatch("GUILD_CREATE", guild)
            session.identified = True
            self.identified.set()
            self.fake.changed()
        elif op == RESUME:
            self.resumes += 1
            if d.get("session_id") not in self._sequences:
                await session.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
                return
            session.session_id = d["session_id"]
            session.shard = self._shards.get(session.session_id)
            session.intents = self.intents
            session.seq = max(self._sequences[session.session_id], int(d.get("seq") or 0))
            await session.dispatch("RESUMED", {"_trace": ["fakediscord"]})
            session.identified = True
            self.fake.changed()
        elif op == REQUEST_MEMBERS:
            world = self.fake.world
            guild_id = int(d.get("guild_id") or world.guild_id)
            await session.dispatch("GUILD_MEMBERS_CHUNK", {
                "guild_id": str(guild_id), "members": list(world.guild_members.get(guild_id, {}).values()),
                "chunk_index": 0, "chunk_count": 1, "nonce": d.get("nonce"), "not_found": [],
                "presences": [],
            })
        else:
            log.debug("fake gateway ignores op %s", op)

    async def dispatch(self, event: str, data: dict[str, Any], *, intent: int = 0) -> int:
        """Send an event to every identified session that has ``intent`` (0: no intent needed) and
        whose shard gets the event's guild (``data["guild_id"]``; none: shard 0). Returns how many."""
        guild_id = int(data["guild_id"]) if data.get("guild_id") else None
        sent = 0
        for session in list(self.sessions):
            if session.identified and (intent == 0 or session.intents & intent) and session.receives(guild_id):
                await session.dispatch(event, data)
                sent += 1
        return sent

    async def reconnect(self) -> None:
        """Op 7 RECONNECT: the client closes and resumes on resume_gateway_url."""
        for session in list(self.sessions):
            await session.send({"op": RECONNECT, "d": None, "s": None, "t": None})

    async def close_all(self) -> None:
        for session in list(self.sessions):
            await session.ws.close(code=1001)
