"""Users and per-deployment facts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GuildSettings, Meta, User, utcnow


async def ensure_user(session: AsyncSession, *, user_id: int, name: str = "") -> None:
    """The member's row, created if missing and renamed if their name changed, in one statement
    (no row is loaded); safe when one member's first jobs arrive concurrently."""
    if session.bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    name = name[:100]
    upsert = insert(User).values(id=user_id, name=name, created_at=utcnow())
    if name:
        upsert = upsert.on_conflict_do_update(index_elements=[User.id], set_={"name": upsert.excluded.name},
                                              where=User.name.is_distinct_from(upsert.excluded.name))
    else:
        upsert = upsert.on_conflict_do_nothing()
    await session.execute(upsert)


async def get_meta(session: AsyncSession, *, key: str) -> str | None:
    row = await session.get(Meta, key)
    return row.value if row else None


async def set_meta(session: AsyncSession, *, key: str, value: str) -> None:
    row = await session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value
    await session.flush()


async def get_guild_settings(session: AsyncSession, *, guild_id: int) -> GuildSettings | None:
    return await session.get(GuildSettings, guild_id)


async def all_user_ids(session: AsyncSession) -> list[int]:
    return list((await session.execute(select(User.id))).scalars().all())
