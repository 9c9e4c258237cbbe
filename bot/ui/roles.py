"""The role ids of members seen recently, for the allowances' role tiers.

Without the privileged members intent the guild's member cache stays empty, so roles are learned
from what interactions and reactions carry (the account cog feeds it) and read by the quota
service through `roles_of`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

MAX_REMEMBERED_MEMBERS = 10_000


class RoleMemory:
    """Bounded: the least recently seen member is forgotten first."""

    def __init__(self, size: int = MAX_REMEMBERED_MEMBERS) -> None:
        self.size = size
        self._roles: OrderedDict[tuple[int, int], list[int]] = OrderedDict()

    def remember(self, member: Any) -> None:
        guild = getattr(member, "guild", None)
        if guild is None or not hasattr(member, "roles"):
            return
        key = (guild.id, member.id)
        self._roles[key] = [r.id for r in member.roles]
        self._roles.move_to_end(key)
        while len(self._roles) > self.size:
            self._roles.popitem(last=False)

    def __call__(self, guild_id: int, user_id: int) -> list[int]:
        return self._roles.get((guild_id, user_id), [])
