"""Members' and servers' defaults (/settings, /admin defaults). Keyword-only, take the caller's
session, never commit on their own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import utcnow
from db.models_preferences import FIELDS, MEMBER_FIELDS, MemberPreferences, ServerDefaults


def _values(row: MemberPreferences | ServerDefaults | None, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in fields} if row is not None else dict.fromkeys(fields)


async def member(session: AsyncSession, *, user_id: int) -> dict[str, Any]:
    """The member's stored values by field name (None: not set)."""
    return _values(await session.get(MemberPreferences, user_id), MEMBER_FIELDS)


async def server(session: AsyncSession, *, guild_id: int | None) -> dict[str, Any]:
    """The server's stored values by field name (None: not set; no server in DMs)."""
    row = await session.get(ServerDefaults, guild_id) if guild_id is not None else None
    return _values(row, FIELDS)


async def update_member(session: AsyncSession, *, user_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Set (a value) or clear (None) the named fields; a row with nothing left set is removed.
    Returns the member's values afterwards."""
    return await _update(session, MemberPreferences, user_id, values, MEMBER_FIELDS, key="user_id")


async def update_server(session: AsyncSession, *, guild_id: int, values: dict[str, Any],
                        by: int | None) -> dict[str, Any]:
    return await _update(session, ServerDefaults, guild_id, values, FIELDS, key="guild_id", updated_by=by)


async def _update(session: AsyncSession, table: Any, key_value: int, values: dict[str, Any],
                  fields: tuple[str, ...], *, key: str, **extra: Any) -> dict[str, Any]:
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown default(s) {sorted(unknown)}")
    row = await session.get(table, key_value, with_for_update=session.bind.dialect.name == "postgresql")
    stored = row is not None
    if row is None:
        row = table(**{key: key_value})
    for name, value in values.items():
        setattr(row, name, value)
    for name, value in extra.items():
        setattr(row, name, value)
    row.updated_at = utcnow()
    result = _values(row, fields)
    if any(value is not None for value in result.values()):
        if not stored:
            session.add(row)
    elif stored:
        await session.delete(row)
    await session.flush()
    return result


async def delete_member(session: AsyncSession, *, user_id: int) -> int:
    """/forget: the member's defaults; returns the rows removed."""
    result = await session.execute(delete(MemberPreferences).where(MemberPreferences.user_id == user_id))
    return result.rowcount or 0


async def delete_server(session: AsyncSession, *, guild_id: int) -> int:
    result = await session.execute(delete(ServerDefaults).where(ServerDefaults.guild_id == guild_id))
    return result.rowcount or 0
