"""The guild the fake hosts: users, roles, channels, members, DM channels, and permission maths.

Objects are kept as Discord JSON dicts (the shapes from the API docs), because that is what both the
gateway and REST hand out. Permission computation follows
https://discord.com/developers/docs/topics/permissions#permission-overwrites
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .state import Snowflakes

# https://discord.com/developers/docs/topics/permissions#permissions-bitwise-permission-flags
ADMINISTRATOR = 1 << 3
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

EVERYONE_PERMISSIONS = (VIEW_CHANNEL | SEND_MESSAGES | ADD_REACTIONS | EMBED_LINKS | ATTACH_FILES
                        | READ_MESSAGE_HISTORY | USE_EXTERNAL_EMOJIS | USE_APPLICATION_COMMANDS
                        | SEND_MESSAGES_IN_THREADS)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES

# https://discord.com/developers/docs/resources/channel#channel-object-channel-types
GUILD_TEXT, DM = 0, 1


def iso(ts: dt.datetime | None = None) -> str:
    return (ts or dt.datetime.now(dt.UTC)).isoformat()


def user_json(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(user_id), "username": name, "global_name": name, "discriminator": "0",
        "avatar": None, "bot": bot, "system": False, "public_flags": 0, "flags": 0,
        "banner": None, "accent_color": None, "avatar_decoration_data": None, "primary_guild": None,
    }


def role_json(role_id: int, name: str, permissions: int, position: int, *, managed: bool = False) -> dict[str, Any]:
    return {
        "id": str(role_id), "name": name, "permissions": str(permissions), "position": position,
        "color": 0, "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False, "managed": managed, "mentionable": False, "icon": None, "unicode_emoji": None,
        "flags": 0,
    }


@dataclass(frozen=True, slots=True)
class SecondGuild:
    """The ids of a guild made by World.add_guild."""

    guild_id: int
    owner_id: int
    channel_id: int
    nsfw_channel_id: int


class World:
    """One application with its bot user, one guild, three text channels, and members.

    ``add_guild`` adds more guilds (each with its own owner, roles, members and channels) for tests
    of what one server's members can reach in another; the first guild stays the default everywhere.
    """

    def __init__(self, snowflake: Snowflakes) -> None:
        self.snowflake = snowflake
        self.app_id = self.bot_user_id = snowflake()
        self.guild_id = snowflake()
        self.owner_id = snowflake()
        self.user_id = snowflake()
        self.channel_id = snowflake()
        self.nsfw_channel_id = snowflake()
        self.mod_channel_id = snowflake()
        self.bot_role_id = snowflake()
        self.mod_role_id = snowflake()
        self.users: dict[int, dict[str, Any]] = {}
        self.roles: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.members: dict[int, dict[str, Any]] = {}
        self.dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self.closed_dms: set[int] = set()
        # Every guild's owner and members; the first guild's members are ``self.members``.
        self.guild_owners: dict[int, int] = {self.guild_id: self.owner_id}
        self.guild_members: dict[int, dict[int, dict[str, Any]]] = {self.guild_id: self.members}
        self.guild_names: dict[int, str] = {self.guild_id: "Atelier Test Guild"}
        self.role_guilds: dict[int, int] = {}  # role id -> its guild

        self.roles[self.guild_id] = role_json(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        self.roles[self.bot_role_id] = role_json(self.bot_role_id, "Atelier", BOT_PERMISSIONS, 1, managed=True)
        self.roles[self.bot_role_id]["tags"] = {"bot_id": str(self.bot_user_id)}
        self.roles[self.mod_role_id] = role_json(self.mod_role_id, "Moderator", EVERYONE_PERMISSIONS, 2)
        self.users[self.bot_user_id] = user_json(self.bot_user_id, "Atelier", bot=True)
        self.add_member(self.bot_user_id, "Atelier", roles=[self.bot_role_id])
        self.add_member(self.owner_id, "owner", permissions=ADMINISTRATOR)
        self.add_member(self.user_id, "user")
        self.add_channel(self.channel_id, "general")
        self.add_channel(self.nsfw_channel_id, "after-dark", nsfw=True)
        hidden = [
            {"id": str(self.guild_id), "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)},
            {"id": str(self.bot_role_id), "type": 0, "allow": str(VIEW_CHANNEL), "deny": "0"},
            {"id": str(self.mod_role_id), "type": 0, "allow": str(VIEW_CHANNEL), "deny": "0"},
        ]
        self.add_channel(self.mod_channel_id, "mod-log", overwrites=hidden)

    # -- construction -------------------------------------------------------------------------
    def add_role(self, name: str, permissions: int = 0, role_id: int | None = None, *,
                 guild_id: int | None = None) -> dict[str, Any]:
        role_id = role_id or self.snowflake()
        guild_id = guild_id or self.guild_id
        position = sum(1 for rid in self.roles if self.role_guilds.get(rid, self.guild_id) == guild_id)
        self.roles[role_id] = role_json(role_id, name, permissions, position)
        self.role_guilds[role_id] = guild_id
        return self.roles[role_id]

    def add_member(self, user_id: int, name: str, roles: list[int] | None = None,
                   permissions: int | None = None, *, guild_id: int | None = None) -> dict[str, Any]:
        """A guild member; ``permissions`` becomes a role of its own so the bot's cache agrees."""
        guild_id = guild_id or self.guild_id
        self.users.setdefault(user_id, user_json(user_id, name))
        role_ids = [int(r) for r in roles or []]
        if permissions is not None:
            role_ids.append(int(self.add_role(f"{name}-permissions", permissions, guild_id=guild_id)["id"]))
        member = {
            "user": self.users[user_id], "nick": None, "avatar": None, "banner": None,
            "roles": [str(r) for r in role_ids], "joined_at": iso(), "premium_since": None,
            "deaf": False, "mute": False, "flags": 0, "pending": False,
            "communication_disabled_until": None, "avatar_decoration_data": None,
        }
        self.guild_members[guild_id][user_id] = member
        return member

    def add_channel(self, channel_id: int, name: str, *, nsfw: bool = False,
                    overwrites: list[dict[str, Any]] | None = None, guild_id: int | None = None) -> dict[str, Any]:
        self.channels[channel_id] = {
            "id": str(channel_id), "type": GUILD_TEXT, "guild_id": str(guild_id or self.guild_id), "name": name,
            "position": len(self.channels), "permission_overwrites": overwrites or [], "nsfw": nsfw,
            "topic": None, "last_message_id": None, "rate_limit_per_user": 0, "parent_id": None,
            "default_auto_archive_duration": 1440, "flags": 0,
        }
        return self.channels[channel_id]

    def add_guild(self, name: str, owner_id: int, owner_name: str = "owner") -> SecondGuild:
        """Another guild the bot is in, owned by ``owner_id`` (who may be a member of the first one
        too), with the bot, a general and an age-restricted channel. Add it before the bot connects."""
        guild_id = self.snowflake()
        self.guild_owners[guild_id] = owner_id
        self.guild_members[guild_id] = {}
        self.guild_names[guild_id] = name
        self.roles[guild_id] = role_json(guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        self.role_guilds[guild_id] = guild_id
        bot_role = int(self.add_role("Atelier", BOT_PERMISSIONS, guild_id=guild_id)["id"])
        self.roles[bot_role]["managed"] = True
        self.roles[bot_role]["tags"] = {"bot_id": str(self.bot_user_id)}
        self.add_member(self.bot_user_id, "Atelier", roles=[bot_role], guild_id=guild_id)
        self.add_member(owner_id, owner_name, guild_id=guild_id)
        general, after_dark = self.snowflake(), self.snowflake()
        self.add_channel(general, "general", guild_id=guild_id)
        self.add_channel(after_dark, "after-dark", nsfw=True, guild_id=guild_id)
        return SecondGuild(guild_id, owner_id, general, after_dark)

    def dm_channel(self, user_id: int) -> dict[str, Any]:
        """The DM channel with a user, created on first use like POST /users/@me/channels does."""
        if user_id not in self.dm_channels:
            channel_id = self.snowflake()
            self.dm_channels[user_id] = channel_id
            self.channels[channel_id] = {
                "id": str(channel_id), "type": DM, "last_message_id": None, "flags": 0,
                "recipients": [self.users[user_id]],
            }
        return self.channels[self.dm_channels[user_id]]

    # -- queries ------------------------------------------------------------------------------
    def is_dm(self, channel_id: int) -> bool:
        return self.channels.get(channel_id, {}).get("type") == DM

    def dm_recipient(self, channel_id: int) -> int | None:
        return next((u for u, c in self.dm_channels.items() if c == channel_id), None)

    def guild_of(self, channel_id: int) -> int | None:
        """The guild a channel belongs to; None for a DM channel."""
        guild_id = self.channels.get(channel_id, {}).get("guild_id")
        return int(guild_id) if guild_id else None

    def member(self, user_id: int, guild_id: int | None = None) -> dict[str, Any] | None:
        return self.guild_members.get(guild_id or self.guild_id, {}).get(user_id)

    def permissions(self, user_id: int, channel_id: int | None = None, *, guild_id: int | None = None) -> int:
        """Base permissions from roles, then channel overwrites (@everyone, roles, member)."""
        guild_id = (self.guild_of(channel_id) if channel_id else None) or guild_id or self.guild_id
        member = self.member(user_id, guild_id)
        if member is None:
            return 0
        if user_id == self.guild_owners[guild_id]:
            return ALL_PERMISSIONS
        role_ids = [guild_id] + [int(r) for r in member["roles"]]
        perms = 0
        for rid in role_ids:
            perms |= int(self.roles[rid]["permissions"]) if rid in self.roles else 0
        if perms & ADMINISTRATOR:
            return ALL_PERMISSIONS
        channel = self.channels.get(channel_id) if channel_id else None
        if not channel or channel.get("type") == DM:
            return perms
        overwrites = {int(o["id"]): o for o in channel.get("permission_overwrites", [])}
        if guild_id in overwrites:
            ow = overwrites[guild_id]
            perms = (perms & ~int(ow["deny"])) | int(ow["allow"])
        allow = deny = 0
        for rid in role_ids[1:]:
            if rid in overwrites:
                allow |= int(overwrites[rid]["allow"])
                deny |= int(overwrites[rid]["deny"])
        perms = (perms & ~deny) | allow
        if user_id in overwrites:
            perms = (perms & ~int(overwrites[user_id]["deny"])) | int(overwrites[user_id]["allow"])
        return perms

    def guild_json(self, *, all_members: bool = True, guild_id: int | None = None) -> dict[str, Any]:
        """GUILD_CREATE payload; https://discord.com/developers/docs/events/gateway-events#guild-create

        Without the GUILD_MEMBERS intent Discord sends only the bot's own member (``all_members=False``).
        """
        guild_id = guild_id or self.guild_id
        everyone = self.guild_members[guild_id]
        members = everyone.values() if all_members else [everyone[self.bot_user_id]]
        roles = [r for rid, r in self.roles.items() if self.role_guilds.get(rid, self.guild_id) == guild_id]
        channels = [c for c in self.channels.values() if c["type"] != DM and int(c["guild_id"]) == guild_id]
        return {
            "id": str(guild_id), "name": self.guild_names[guild_id], "icon": None, "splash": None,
            "discovery_splash": None, "owner_id": str(self.guild_owners[guild_id]), "afk_channel_id": None,
            "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 1,
            "explicit_content_filter": 0, "roles": roles, "emojis": [],
            "stickers": [], "features": [], "mfa_level": 0, "application_id": None,
            "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "max_members": 500000, "vanity_url_code": None, "description": None, "banner": None,
            "premium_tier": 0, "premium_subscription_count": 0, "preferred_locale": "en-US",
            "public_updates_channel_id": None, "safety_alerts_channel_id": None, "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "unavailable": False, "large": False,
            "joined_at": iso(), "member_count": len(everyone), "lazy": True,
            "members": list(members), "voice_states": [], "presences": [],
            "channels": channels,
            "threads": [], "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        }

    def interaction_member(self, user_id: int, channel_id: int) -> dict[str, Any]:
        """Interaction member objects carry the member's permissions in the channel."""
        member = self.member(user_id, self.guild_of(channel_id))
        if member is None:
            raise LookupError(f"user {user_id} is not a member of the guild of channel {channel_id}")
        return {**member, "permissions": str(self.permissions(user_id, channel_id))}
