"""Paused servers. Keyword-only, take the caller's session, never commit on their own."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import utcnow
from db.models_access import PausedGuild


async def pause_guild(session: AsyncSession, *, guild_id: int, by: int | None) -> bool:
    """Pause the server's queue; False if it already was."""
    if await session.get(PausedGuild, guild_id) is not None:
        return False
    session.add(PausedGuild(guild_id=guild_id, paused_by=by, paused_at=utcnow()))
    await session.flush()
    return True


async def resume_guild(session: AsyncSession, *, guild_id: int) -> bool:
    """Resume the server's queue; False if it was not paused."""
    result = await session.execute(delete(PausedGuild).where(PausedGuild.guild_id == guild_id))
    return bool(result.rowcount)


async def is_paused(session: AsyncSession, *, guild_id: int | None) -> bool:
    if guild_id is None:
        return False
    return await session.scalar(select(PausedGuild.guild_id).where(PausedGuild.guild_id == guild_id)) is not None

