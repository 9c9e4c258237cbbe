"""REST routes the bot calls with its bot token: users, application, commands, guild, channels.

Each handler raises ``DiscordError`` for Discord's error responses; ``server.py`` turns those into
``{"message", "code"}`` bodies (https://discord.com/developers/docs/topics/opcodes-and-status-codes#json).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from .builders import application_json, message_json
from .messages import apply_payload, read_payload
from .state import DiscordError, Message
from .world import (
    ADD_REACTIONS,
    ATTACH_FILES,
    MANAGE_MESSAGES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
)

if TYPE_CHECKING:
    from .server import FakeDiscord


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Exactly ``application/json``: discord.py parses JSON only for that content type (no charset)."""
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


def no_content() -> web.Response:
    return web.Response(status=204)


class BotRoutes:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.world = fake.world

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        routes = [
            ("GET", "/gateway", self.gateway), ("GET", "/gateway/bot", self.gateway),
            ("GET", "/users/@me", self.me), ("POST", "/users/@me/channels", self.open_dm),
            ("GET", "/users/{user_id:\\d+}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.application),
            ("GET", "/applications/@me", self.application),
            ("GET", "/applications/{app_id}/commands", self.get_commands),
            ("PUT", "/applications/{app_id}/commands", self.put_commands),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self.get_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self.put_commands),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("GET", "/channels/{channel_id}/messages", self.history),
            ("POST", "/channels/{channel_id}/messages", self.send),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user}", self.add_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/{user}",
             self.remove_reaction),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions", self.clear_reactions),
        ]
        for method, path, handler in routes:
            router.add_route(method, prefix + path, handler)

    # -- helpers ------------------------------------------------------------------------------
    def _channel(self, request: web.Request) -> int:
        channel_id = int(request.match_info["channel_id"])
        if channel_id not in self.world.channels:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel_id

    def _message(self, request: web.Request) -> Message:
        channel_id = self._channel(request)
        msg = self.fake.messages.get(int(request.match_info["message_id"]))
        if msg is None or msg.deleted or msg.channel_id != channel_id or msg.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        return msg

    def _require(self, channel_id: int, perms: int) -> None:
        """Missing Permissions (403/50013) when the bot lacks ``perms`` in a guild channel."""
        if self.world.is_dm(channel_id):
            return
        have = self.world.permissions(self.world.bot_user_id, channel_id)
        if have & VIEW_CHANNEL == 0:
            raise DiscordError(403, 50001, "Missing Access")
        if have & perms != perms:
            raise DiscordError(403, 50013, "Missing Permissions")

    def _app(self, request: web.Request) -> None:
        if int(request.match_info["app_id"]) != self.world.app_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None and int(guild_id) not in self.world.guild_owners:
            raise DiscordError(403, 50001, "Missing Access")

    # -- handlers -----------------------------------------------------------------------------
    async def gateway(self, request: web.Request) -> web.Response:
        """GET /gateway[/bot]; https://discord.com/developers/docs/events/gateway#get-gateway-bot
        (``shards`` is the recommendation an AutoShardedBot without a shard_count follows)."""
        body: dict[str, Any] = {"url": self.fake.gateway_url}
        if request.path.endswith("/bot"):
            body.update(shards=self.fake.recommended_shards, session_start_limit={
                "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1})
        return json_response(body)

    async def me(self, request: web.Request) -> web.Response:
        return json_response({**self.world.users[self.world.bot_user_id], "verified": True, "mfa_enabled": False})

    async def get_user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(int(request.match_info["user_id"]))
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return json_response(user)

    async def open_dm(self, request: web.Request) -> web.Response:
        body = await request.json()
        user_id = int(body["recipient_id"])
        if user_id not in self.world.users:
            raise DiscordError(400, 50035, "Invalid Form Body")
        return json_response(self.world.dm_channel(user_id))

    async def application(self, request: web.Request) -> web.Response:
        return json_response(application_json(self.fake))

    async def get_commands(self, request: web.Request) -> web.Response:
        self._app(request)
        guild = request.match_info.get("guild_id")
        store = self.fake.guild_commands if guild else self.fake.global_commands
        return json_response(list(store.values()))

    async def put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite; ids are kept for commands whose (name, type) survives, like Discord does."""
        self._app(request)
        guild = request.match_info.get("guild_id")
        store = self.fake.guild_commands if guild else self.fake.global_commands
        old = {(c["name"], c.get("type", 1)): c for c in store.values()}
        store.clear()
        for cmd in await request.json():
            if len(cmd.get("description", "")) > 100 or len(cmd.get("options") or []) > 25:
                raise DiscordError(400, 50035, "Invalid Form Body")
            key = (cmd["name"], cmd.get("type", 1))
            cmd_id = old[key]["id"] if key in old else str(self.fake.snowflake())
            full = {"id": cmd_id, "application_id": str(self.world.app_id), "version": str(self.fake.snowflake()),
                    "type": 1, "description": "", "default_member_permissions": None, "nsfw": False,
                    "dm_permission": True, "contexts": None, "integration_types": [0], **cmd}
            if guild:
                full["guild_id"] = guild
            key_name = cmd["name"] if full["type"] == 1 or cmd["name"] not in store else f"{cmd['name']}#{full['type']}"
            store[key_name] = full
        self.fake.sync_count += 1
        self.fake.changed()
        return json_response(list(store.values()))

    async def get_guild(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"])
        if guild_id not in self.world.guild_owners:
            raise DiscordError(404, 10004, "Unknown Guild")
        guild = self.world.guild_json(guild_id=guild_id)
        for key in ("members", "channels", "threads", "voice_states", "presences", "joined_at", "lazy"):
            guild.pop(key, None)
        return json_response(guild)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"])
        return json_response([c for c in self.world.channels.values() if c["type"] != 1
                              and int(c["guild_id"]) == guild_id])

    async def get_roles(self, request: web.Request) -> web.Response:
        guild_id = int(request.match_info["guild_id"])
        return json_response([r for rid, r in self.world.roles.items()
                              if self.world.role_guilds.get(rid, self.world.guild_id) == guild_id])

    async def get_member(self, request: web.Request) -> web.Response:
        member = self.world.member(int(request.match_info["user_id"]), int(request.match_info["guild_id"]))
        if member is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return json_response(member)

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.world.channels[self._channel(request)])

    async def typing(self, request: web.Request) -> web.Response:
        self._require(self._channel(request), SEND_MESSAGES)
        return no_content()

    async def history(self, request: web.Request) -> web.Response:
        channel_id = self._channel(request)
        self._require(channel_id, READ_MESSAGE_HISTORY)
        msgs = [m for m in self.fake.channel_messages(channel_id) if not m.ephemeral]
        q = request.query
        if "before" in q:
            msgs = [m for m in msgs if m.id < int(q["before"])]
        if "after" in q:
            msgs = [m for m in msgs if m.id > int(q["after"])]
        limit = int(q.get("limit", 50))
        page = msgs[:limit] if "after" in q else msgs[-limit:]
        return json_response([message_json(self.fake, m) for m in reversed(page)])

    async def send(self, request: web.Request) -> web.Response:
        channel_id = self._channel(request)
        payload, files = await read_payload(request, self.fake.upload_limit)
        self._require(channel_id, SEND_MESSAGES | (ATTACH_FILES if files else 0))
        recipient = self.world.dm_recipient(channel_id)
        if recipient is not None and recipient in self.world.closed_dms:
            raise DiscordError(403, 50007, "Cannot send messages to this user")
        msg = self.fake.new_message(channel_id, self.world.bot_user_id)
        ref = payload.get("message_reference")
        if ref and int(ref["message_id"]) not in self.fake.messages and ref.get("fail_if_not_exists", True):
            raise DiscordError(400, 50035, "Invalid Form Body: Unknown message")
        if ref:
            msg.type = 19  # REPLY
        apply_payload(self.fake, msg, payload, files, creating=True)
        await self.fake.publish(msg)
        return json_response(message_json(self.fake, msg))

    async def get_message(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        self._require(msg.channel_id, READ_MESSAGE_HISTORY)
        return json_response(message_json(self.fake, msg))

    async def edit(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        payload, files = await read_payload(request, self.fake.upload_limit)
        if msg.author_id != self.world.bot_user_id:
            only_flags = set(payload) <= {"flags"}
            if not only_flags:
                raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        apply_payload(self.fake, msg, payload, files, creating=False)
        await self.fake.publish(msg, edited=True)
        return json_response(message_json(self.fake, msg))

    async def delete(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        if msg.author_id != self.world.bot_user_id:
            self._require(msg.channel_id, MANAGE_MESSAGES)
        await self.fake.delete_message(msg)
        return no_content()

    async def add_reaction(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        if request.match_info["user"] != "@me":
            raise DiscordError(405, 0, "405: Method Not Allowed")
        emoji = unquote(request.match_info["emoji"])
        if not msg.user_reactions.get(emoji):
            self._require(msg.channel_id, ADD_REACTIONS | READ_MESSAGE_HISTORY)
        await self.fake.add_reaction(msg, emoji, self.world.bot_user_id)
        return no_content()

    async def remove_reaction(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        emoji = unquote(request.match_info["emoji"])
        user = request.match_info["user"]
        user_id = self.world.bot_user_id if user == "@me" else int(user)
        if user_id != self.world.bot_user_id:
            self._require(msg.channel_id, MANAGE_MESSAGES)
        await self.fake.remove_reaction(msg, emoji, user_id)
        return no_content()

    async def clear_reactions(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        self._require(msg.channel_id, MANAGE_MESSAGES)
        msg.user_reactions.clear()
        msg.reactions.clear()
        self.fake.changed()
        return no_content()
