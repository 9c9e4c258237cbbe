"""Server styles (/admin styles). Keyword-only, take the caller's session, never commit on their own;
every query is bounded by the server's id, so one server's styles never reach another."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models_styles import ServerStyle


async def list_styles(session: AsyncSession, *, guild_id: int) -> Sequence[ServerStyle]:
    result = await session.execute(select(ServerStyle).where(ServerStyle.guild_id == guild_id)
                                   .order_by(ServerStyle.name))
    return result.scalars().all()


async def count_styles(session: AsyncSession, *, guild_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(ServerStyle)
                                     .where(ServerStyle.guild_id == guild_id)) or 0)


async def add_style(session: AsyncSession, *, guild_id: int, name: str, prompt: str, negative: str,
                    added_by: int | None) -> ServerStyle:
    style = ServerStyle(guild_id=guild_id, name=name, prompt=prompt, negative=negative, added_by=added_by)
    session.add(style)
    await session.flush()
    return style


async def remove_style(session: AsyncSession, *, guild_id: int, name: str) -> bool:
    """Remove the server's style; False if it has none of that name."""
    result = await session.execute(delete(ServerStyle).where(ServerStyle.guild_id == guild_id,
                                                             ServerStyle.name == name))
    return bool(result.rowcount)
