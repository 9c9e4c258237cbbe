"""``FakeDiscord``: an aiohttp server on 127.0.0.1 that the unmodified discord.py client talks to.

It owns the state (world, messages, interactions), the HTTP plumbing (fault injection, request log,
unknown-route catch-all), and the events it publishes to the gateway. What users do (slash
commands, clicks, reactions) lives in ``actions.py``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from .actions import UserActions
from .builders import emoji_json, gateway_message_json, now_iso
from .gateway import (
    DIRECT_MESSAGE_REACTIONS,
    DIRECT_MESSAGES,
    GUILD_MESSAGE_REACTIONS,
    GUILD_MESSAGES,
    MESSAGE_CONTENT,
    Gateway,
    shard_for,
)
from .options import store_attachment_factory
from .rest import BotRoutes, json_response
from .state import Attachment, Changes, Clock, DiscordError, Interaction, Message, Snowflakes
from .webhooks import InteractionRoutes
from .world import SecondGuild, World

API_PREFIX = "/api/v10"
UNAUTHENTICATED = ("/webhooks/", "/interactions/")


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    retry_after: float
    code: int | None
    remaining: int


class FakeDiscord(UserActions):
    def __init__(self, *, ack_deadline: float = 3.0, upload_limit: int = 10 * 1024 * 1024,
                 recommended_shards: int = 1) -> None:
        self.ack_deadline = ack_deadline
        self.upload_limit = upload_limit
        self.recommended_shards = recommended_shards  # GET /gateway/bot's ``shards``
        self.snowflake = Snowflakes()
        self.clock = Clock()
        self.world = World(self.snowflake)
        self.gateway = Gateway(self)
        self.messages: dict[int, Message] = {}
        self.interactions: dict[int, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.global_commands: dict[str, dict[str, Any]] = {}
        self.guild_commands: dict[str, dict[str, Any]] = {}
        self.sync_count = 0
        self.cdn: dict[int, Attachment] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.unknown_routes: list[tuple[str, str]] = []
        self.faults: list[Fault] = []
        self.port = 0
        self._changes = Changes()
        self._runner: web.AppRunner | None = None
        self._undo: Callable[[], None] | None = None

    # -- world shortcuts ------------------------------------------------------------------------
    app_id = property(lambda self: self.world.app_id)
    bot_user_id = property(lambda self: self.world.bot_user_id)
    guild_id = property(lambda self: self.world.guild_id)
    owner_id = property(lambda self: self.world.owner_id)
    user_id = property(lambda self: self.world.user_id)
    channel_id = property(lambda self: self.world.channel_id)
    nsfw_channel_id = property(lambda self: self.world.nsfw_channel_id)
    mod_channel_id = property(lambda self: self.world.mod_channel_id)
    mod_role_id = property(lambda self: self.world.mod_role_id)

    def add_member(self, user_id: int, name: str, roles: list[int] | None = None,
                   permissions: int | None = None, *, guild_id: int | None = None) -> dict[str, Any]:
        """Add a guild member before the bot connects (GUILD_CREATE carries the members)."""
        return self.world.add_member(user_id, name, roles, permissions, guild_id=guild_id)

    def add_role(self, name: str, permissions: int = 0, *, guild_id: int | None = None) -> dict[str, Any]:
        return self.world.add_role(name, permissions, guild_id=guild_id)

    def add_guild(self, name: str, owner_id: int, owner_name: str = "owner") -> SecondGuild:
        """Another guild (its owner, the bot, a general and an age-restricted channel); before the bot connects."""
        return self.world.add_guild(name, owner_id, owner_name)

    def close_dms(self, user_id: int) -> None:
        """The user does not accept DMs: sending them one fails with 403/50007."""
        self.world.closed_dms.add(user_id)

    @property
    def commands(self) -> dict[str, dict[str, Any]]:
        return {**self.global_commands, **self.guild_commands}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/"

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> FakeDiscord:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 ** 3)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        BotRoutes(self).register(app.router, API_PREFIX)
        InteractionRoutes(self).register(app.router, API_PREFIX)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        self.unpatch()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def patch_discord(self) -> Callable[[], None]:
        """Point discord.py's REST base (read per request, webhooks too) and gateway at the fake."""
        from bot.params import attachments

        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        old_cdn = attachments.CDN_ORIGINS
        discord.http.Route.BASE = f"{self.url}{API_PREFIX}"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        attachments.CDN_ORIGINS = old_cdn | {self.url}  # the fake serves attachments too (/cdn/...)

        def undo() -> None:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
            attachments.CDN_ORIGINS = old_cdn
            self._undo = None

        self._undo = undo
        return undo

    def unpatch(self) -> None:
        if self._undo is not None:
            self._undo()

    async def wait_identified(self, timeout: float = 5.0) -> None:
        """IDENTIFY arrived and READY (+ GUILD_CREATE on the guild's shard) was sent (call after
        launching bot.start). With shards this is the first IDENTIFY; ``bot.wait_until_ready()``
        waits for the rest."""
        await asyncio.wait_for(self.gateway.identified.wait(), timeout)

    def shard_of_guild(self, shard_count: int) -> int:
        """The shard that gets the guild's events with ``shard_count`` shards."""
        return shard_for(self.world.guild_id, shard_count)

    # -- waiting --------------------------------------------------------------------------------
    def changed(self) -> None:
        self._changes.notify()

    async def wait_for(self, predicate: Callable[[FakeDiscord], Any], timeout: float = 10.0,
                       what: str = "predicate", *, poll: bool = True) -> Any:
        """Wait until ``predicate(fake)`` is truthy, re-checking on every state change (and every
        Changes.POLL seconds unless ``poll`` is False: for predicates on the fake's own state)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate(self)
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = self.requests[-8:]
                raise TimeoutError(f"fakediscord: {what} not true after {timeout}s; last requests: {recent}")
            await self._changes.wait(remaining, poll=poll)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock: tokens and ack deadlines age, nothing else does."""
        self.clock.advance(seconds)
        self.changed()

    # -- fault injection and logging -------------------------------------------------------------
    def fail_next(self, method: str, path_regex: str, status: int = 429, retry_after: float = 0.05,
                  code: int | None = None, count: int = 1) -> None:
        """Fail the next ``count`` requests whose method matches and whose path (after /api/v10)
        matches ``path_regex`` (re.search). 429s carry ``Via`` and a JSON ``retry_after`` so
        discord.py retries them; discord.py also retries 500/502/504/524 (after 1 s, 3 s, ...)."""
        self.faults.append(Fault(method.upper(), re.compile(path_regex), status, retry_after, code, count))

    def log_request(self, method: str, path: str, status: int) -> None:
        self.requests.append((method, path, status))
        self.changed()

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]
                          ) -> web.StreamResponse:
        path = request.path
        api_path = path[len(API_PREFIX):] if path.startswith(API_PREFIX) else None
        if api_path is not None:
            fault = self._take_fault(request.method, api_path)
            if fault is not None:
                await request.read()
                self.log_request(request.method, api_path, fault.status)
                return self._fault_response(fault)
            if not api_path.startswith(UNAUTHENTICATED) and not request.headers.get(
                    "Authorization", "").startswith("Bot "):
                self.log_request(request.method, api_path, 401)
                return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        try:
            response = await handler(request)
        except DiscordError as e:
            response = json_response(e.body(), e.status, e.headers)
        if path.startswith("/gateway"):
            return response
        self.log_request(request.method, api_path if api_path is not None else path, response.status)
        return response

    def _take_fault(self, method: str, api_path: str) -> Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.method == method and fault.path.search(api_path):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self.faults.remove(fault)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: Fault) -> web.Response:
        if fault.status == 429:
            # https://discord.com/developers/docs/topics/rate-limits#exceeding-a-rate-limit
            body = {"message": "You are being rate limited.", "retry_after": fault.retry_after,
                    "global": False, "code": fault.code or 0}
            headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(fault.retry_after))),
                       "X-RateLimit-Scope": "user"}
            return json_response(body, 429, headers)
        return json_response({"message": f"fault {fault.status}", "code": fault.code or 0}, fault.status)

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unknown_routes.append((request.method, request.path))
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    async def _cdn(self, request: web.Request) -> web.Response:
        att = self.cdn.get(int(request.match_info["attachment_id"]))
        if att is None or att.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=att.data, content_type=att.content_type or "application/octet-stream")

    # -- messages and events ----------------------------------------------------------------------
    def store_attachment(self, channel_id: int, filename: str, data: bytes, content_type: str | None,
                         description: str | None = None) -> Attachment:
        return store_attachment_factory(self, channel_id, filename, data, content_type, description)

    def new_message(self, channel_id: int, author_id: int, *, webhook: bool = False,
                    interaction_id: int | None = None) -> Message:
        guild_id = self.world.guild_of(channel_id)
        msg = Message(id=self.snowflake(), channel_id=channel_id, author_id=author_id, guild_id=guild_id,
                      webhook=webhook, interaction_id=interaction_id, timestamp=now_iso())
        self.messages[msg.id] = msg
        return msg

    def channel_messages(self, channel_id: int) -> list[Message]:
        return [m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted]

    def dm_messages(self, user_id: int) -> list[Message]:
        channel_id = self.world.dm_channels.get(user_id)
        return self.channel_messages(channel_id) if channel_id else []

    def _message_intent(self, msg: Message) -> int:
        return DIRECT_MESSAGES if msg.guild_id is None else GUILD_MESSAGES

    def _visible_json(self, msg: Message) -> dict[str, Any]:
        """Without MESSAGE_CONTENT, others' guild messages arrive without content (unless they @mention the bot)."""
        data = gateway_message_json(self, msg)
        own = msg.author_id == self.world.bot_user_id
        mentioned = f"<@{self.world.bot_user_id}>" in msg.content
        if not (self.gateway.intents & MESSAGE_CONTENT) and msg.guild_id and not own and not mentioned:
            data.update(content="", embeds=[], attachments=[], components=[])
        return data

    async def publish(self, msg: Message, *, edited: bool = False) -> None:
        """MESSAGE_CREATE / MESSAGE_UPDATE for messages others can see (never ephemeral ones)."""
        self.changed()
        if msg.ephemeral:
            return
        await self.gateway.dispatch("MESSAGE_UPDATE" if edited else "MESSAGE_CREATE", self._visible_json(msg),
                                    intent=self._message_intent(msg))
        self.changed()

    async def delete_message(self, msg: Message) -> None:
        msg.deleted = True
        self.changed()
        if not msg.ephemeral:
            data = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id:
                data["guild_id"] = str(msg.guild_id)
            await self.gateway.dispatch("MESSAGE_DELETE", data, intent=self._message_intent(msg))

    async def add_reaction(self, msg: Message, emoji: str, user_id: int, *, burst: bool = False) -> None:
        users = msg.user_reactions.setdefault(emoji, set())
        if user_id in users:
            return
        users.add(user_id)
        if user_id == self.world.bot_user_id and emoji not in msg.reactions:
            msg.reactions.append(emoji)
        self.changed()
        await self._reaction_event("MESSAGE_REACTION_ADD", msg, emoji, user_id, burst)

    async def remove_reaction(self, msg: Message, emoji: str, user_id: int) -> None:
        users = msg.user_reactions.get(emoji, set())
        if user_id not in users:
            return
        users.discard(user_id)
        if user_id == self.world.bot_user_id and emoji in msg.reactions:
            msg.reactions.remove(emoji)
        self.changed()
        await self._reaction_event("MESSAGE_REACTION_REMOVE", msg, emoji, user_id, False)

    async def _reaction_event(self, event: str, msg: Message, emoji: str, user_id: int, burst: bool) -> None:
        """https://discord.com/developers/docs/events/gateway-events#message-reaction-add"""
        data: dict[str, Any] = {
            "user_id": str(user_id), "channel_id": str(msg.channel_id), "message_id": str(msg.id),
            "emoji": emoji_json(emoji), "burst": burst, "type": 1 if burst else 0,
        }
        if event == "MESSAGE_REACTION_ADD":
            data.update(message_author_id=str(msg.author_id), burst_colors=[])
        if msg.guild_id:
            data["guild_id"] = str(msg.guild_id)
            member = self.world.member(user_id, msg.guild_id)
            if event == "MESSAGE_REACTION_ADD" and member is not None:
                data["member"] = member
        intent = DIRECT_MESSAGE_REACTIONS if msg.guild_id is None else GUILD_MESSAGE_REACTIONS
        await self.gateway.dispatch(event, data, intent=intent)
        self.changed()
