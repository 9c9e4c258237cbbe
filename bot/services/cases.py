"""A server's moderation record as its moderators read and act on it (/mod log, /mod purge,
/mod channel, and where reports go). The policy, bans and the cases recorded while screening
prompts and images are ModerationService's (bot/services/moderation.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models_moderation import ModerationCase
from db.repositories import moderation as mod_repo

__all__ = ["Cases", "ModerationCase"]


class Cases:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def recent(self, *, guild_id: int | None, user_id: int | None = None, limit: int = 10) -> list[ModerationCase]:
        """The newest cases of a server, optionally of one member, newest first."""
        async with self.sessions() as session:
            return await mod_repo.list_cases(session, guild_id=guild_id, user_id=user_id, limit=limit)

    async def report_channel(self, guild_id: int) -> int | None:
        """The channel a server's moderation reports and review requests go to, if it set one."""
        async with self.sessions() as session:
            _, channel_id = await mod_repo.get_policy(session, guild_id=guild_id)
        return channel_id

    async def set_report_channel(self, guild_id: int, channel_id: int) -> None:
        async with self.sessions.begin() as session:
            await mod_repo.set_mod_channel(session, guild_id=guild_id, channel_id=channel_id)

    async def purge(self, job_id: int) -> None:
        """A moderator removed this result: its images go, its job row stays, marked, for the record."""
        async with self.sessions.begin() as session:
            await mod_repo.purge_job(session, job_id=job_id)
