"""Discord JSON built from the fake's records: messages, attachments, interactions, reactions.

Shapes follow https://discord.com/developers/docs/resources/message#message-object and
https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .state import APPLICATION_COMMAND, MESSAGE_COMPONENT, Attachment, Message
from .world import iso

if TYPE_CHECKING:
    from .server import FakeDiscord

# https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object-interaction-context-types
GUILD_CONTEXT, BOT_DM_CONTEXT = 0, 1


def attachment_json(att: Attachment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(att.id), "filename": att.filename, "size": att.size, "url": att.url,
        "proxy_url": att.url, "content_type": att.content_type, "description": att.description,
        "flags": 0,
    }
    if att.content_type and att.content_type.startswith("image/"):
        out.update(width=64, height=64)
    return out


def emoji_json(emoji: str) -> dict[str, Any]:
    """``name:id`` / ``a:name:id`` (custom, as discord.py puts it in URLs) or a unicode emoji."""
    parts = emoji.split(":")
    if len(parts) >= 2 and parts[-1].isdigit():
        return {"id": parts[-1], "name": parts[-2], "animated": len(parts) == 3 and parts[0] == "a"}
    return {"id": None, "name": emoji}


def message_json(fake: FakeDiscord, msg: Message) -> dict[str, Any]:
    world = fake.world
    out: dict[str, Any] = {
        "id": str(msg.id), "type": msg.type, "channel_id": str(msg.channel_id),
        "author": world.users[msg.author_id], "content": msg.content, "timestamp": msg.timestamp,
        "edited_timestamp": msg.edited_timestamp, "tts": msg.tts, "mention_everyone": False,
        "mentions": [], "mention_roles": [], "mention_channels": [],
        "attachments": [attachment_json(a) for a in msg.attachments], "embeds": msg.embeds,
        "components": msg.components, "pinned": False, "flags": msg.flags,
        "reactions": [
            {"emoji": emoji_json(e), "count": len(users), "me": world.bot_user_id in users,
             "me_burst": False, "burst_colors": [], "count_details": {"burst": 0, "normal": len(users)}}
            for e, users in msg.user_reactions.items() if users
        ],
    }
    if msg.guild_id is not None:
        out["guild_id"] = str(msg.guild_id)
    if msg.webhook:
        out["webhook_id"] = str(world.app_id)
        out["application_id"] = str(world.app_id)
    if msg.message_reference:
        out["message_reference"] = msg.message_reference
    if msg.poll:
        out["poll"] = msg.poll
    inter = fake.interactions.get(msg.interaction_id) if msg.interaction_id else None
    if inter is not None:
        meta: dict[str, Any] = {
            "id": str(inter.id), "type": inter.type, "user": world.users[inter.user_id],
            "authorizing_integration_owners": inter.payload["authorizing_integration_owners"],
        }
        if inter.type == APPLICATION_COMMAND:
            meta["name"] = inter.payload["data"]["name"]
            meta["command_type"] = inter.payload["data"].get("type", 1)
        if inter.original is not None and inter.original is not msg:
            meta["original_response_message_id"] = str(inter.original.id)
        if inter.type == MESSAGE_COMPONENT and inter.message_id:
            meta["interacted_message_id"] = str(inter.message_id)
        out["interaction_metadata"] = meta
    return out


def gateway_message_json(fake: FakeDiscord, msg: Message) -> dict[str, Any]:
    """MESSAGE_CREATE/UPDATE add the author's member object in guilds."""
    out = message_json(fake, msg)
    member = fake.world.member(msg.author_id, msg.guild_id) if msg.guild_id is not None else None
    if member is not None:
        out["member"] = {k: v for k, v in member.items() if k != "user"}
    return out


def interaction_json(fake: FakeDiscord, *, interaction_id: int, token: str, type_: int,
                     data: dict[str, Any] | None, user_id: int, channel_id: int,
                     message: Message | None = None) -> dict[str, Any]:
    world = fake.world
    channel = world.channels[channel_id]
    in_dm = world.is_dm(channel_id)
    out: dict[str, Any] = {
        "id": str(interaction_id), "application_id": str(world.app_id), "type": type_,
        "token": token, "version": 1, "channel": channel, "channel_id": str(channel_id),
        "locale": "en-US", "entitlements": [], "entitlement_sku_ids": [],
        "attachment_size_limit": fake.upload_limit,
        "app_permissions": str(world.permissions(world.bot_user_id, None if in_dm else channel_id)),
        "context": BOT_DM_CONTEXT if in_dm else GUILD_CONTEXT,
    }
    if data is not None:
        out["data"] = data
    if in_dm:
        out["user"] = world.users[user_id]
        out["authorizing_integration_owners"] = {"1": str(user_id)}
    else:
        guild_id = world.guild_of(channel_id)
        out["guild_id"] = str(guild_id)
        out["guild"] = {"id": str(guild_id), "locale": "en-US", "features": []}
        out["guild_locale"] = "en-US"
        out["member"] = world.interaction_member(user_id, channel_id)
        out["authorizing_integration_owners"] = {"0": str(guild_id)}
    if message is not None:
        out["message"] = message_json(fake, message)
    return out


def application_json(fake: FakeDiscord) -> dict[str, Any]:
    """GET /oauth2/applications/@me; https://discord.com/developers/docs/resources/application"""
    world = fake.world
    return {
        "id": str(world.app_id), "name": "Atelier", "icon": None, "description": "", "summary": "",
        "bot_public": True, "bot_require_code_grant": False, "owner": world.users[world.owner_id],
        "team": None, "verify_key": "0" * 64, "flags": 0, "bot": world.users[world.bot_user_id],
        "tags": [], "redirect_uris": [], "interactions_endpoint_url": None,
        "approximate_guild_count": 1, "integration_types_config": {"0": {}},
    }


def ready_json(fake: FakeDiscord, session_id: str, *, shard: tuple[int, int] | None = None,
               guilds: list[int] | None = None) -> dict[str, Any]:
    """READY; https://discord.com/developers/docs/events/gateway-events#ready

    ``shard`` is echoed from IDENTIFY (absent there: [0, 1]); ``guilds`` are the ones on that shard."""
    world = fake.world
    guild_ids = [world.guild_id] if guilds is None else guilds
    return {
        "v": 10, "user": {**world.users[world.bot_user_id], "verified": True, "mfa_enabled": False,
                          "email": None},
        "guilds": [{"id": str(guild_id), "unavailable": True} for guild_id in guild_ids],
        "session_id": session_id, "resume_gateway_url": fake.gateway_url, "shard": list(shard or (0, 1)),
        "application": {"id": str(world.app_id), "flags": 0}, "private_channels": [],
        "relationships": [], "user_settings": {}, "presences": [], "guild_join_requests": [],
        "geo_ordered_rtc_regions": [], "_trace": ["fakediscord"],
    }


def now_iso() -> str:
    return iso()
