"""Users and per-deployment facts."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.engine import upsert_insert
from db.models import Meta, User, utcnow


async def ensure_user(session: AsyncSession, *, user_id: int, name: str = "") -> None:
    """The member's row, created if missing and renamed if their name changed, in one statement
    (no row is loaded); safe when one member's first jobs arrive concurrently."""
    name = name[:100]
    await session.execute(_ensure_user_query(session.bind.dialect.name, bool(name)),
                          {"id": user_id, "name": name, "created_at": utcnow()})


@functools.cache
def _ensure_user_query(dialect: str, named: bool) -> Any:
    """Built once per dialect (every submission runs it); the table, not the entity: an ORM INSERT
    given parameters at execution is a bulk insert of them."""
    users = User.__table__
    upsert = upsert_insert(dialect)(users)
    if not named:
        return upsert.on_conflict_do_nothing()
    return upsert.on_conflict_do_update(index_elements=[users.c.id], set_={"name": upsert.excluded.name},
                                        where=users.c.name.is_distinct_from(upsert.excluded.name))


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
