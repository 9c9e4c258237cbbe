"""Moderation cases, bans and guild policy storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import GuildSettings, utcnow
from db.models_moderation import Ban, ModerationCase


async def record_case(session: AsyncSession, *, case: ModerationCase) -> ModerationCase:
    session.add(case)
    await session.flush()
    return case


async def get_case(session: AsyncSession, *, case_id: int) -> ModerationCase | None:
    return await session.get(ModerationCase, case_id)


async def list_cases(session: AsyncSession, *, guild_id: int | None, user_id: int | None = None,
                     limit: int = 10) -> list[ModerationCase]:
    query = select(ModerationCase).where(ModerationCase.guild_id == guild_id)
    if user_id is not None:
        query = query.where(ModerationCase.user_id == user_id)
    result = await session.execute(query.order_by(ModerationCase.id.desc()).limit(limit))
    return list(result.scalars().all())


async def active_ban(session: AsyncSession, *, guild_id: int, user_id: int, now: datetime | None = None) -> Ban | None:
    ban = await session.get(Ban, (guild_id, user_id))
    if ban is None:
        return None
    until = ban.until
    if until is not None:
        if until.tzinfo is None:  # SQLite returns naive datetimes
            from datetime import UTC

            until = until.replace(tzinfo=UTC)
        if until <= (now or utcnow()):
            return None
    return ban


async def list_bans(session: AsyncSession, *, guild_id: int) -> list[Ban]:
    result = await session.execute(select(Ban).where(Ban.guild_id == guild_id))
    return list(result.scalars().all())


async def set_ban(session: AsyncSession, *, guild_id: int, user_id: int, until: datetime | None, reason: str,
                  moderator_id: int | None) -> Ban:
    ban = await session.get(Ban, (guild_id, user_id))
    if ban is None:
        ban = Ban(guild_id=guild_id, user_id=user_id)
        session.add(ban)
    ban.until, ban.reason, ban.moderator_id, ban.created_at = until, reason, moderator_id, utcnow()
    await session.flush()
    return ban


async def remove_ban(session: AsyncSession, *, guild_id: int, user_id: int) -> bool:
    result = await session.execute(delete(Ban).where(Ban.guild_id == guild_id, Ban.user_id == user_id))
    return bool(result.rowcount)


async def get_policy(session: AsyncSession, *, guild_id: int) -> tuple[dict[str, Any] | None, int | None]:
    """(stored policy dict or None for defaults, moderation log channel id)."""
    row = await session.get(GuildSettings, guild_id)
    return (row.policy, row.mod_channel_id) if row else (None, None)


async def _settings(session: AsyncSession, guild_id: int) -> GuildSettings:
    row = await session.get(GuildSettings, guild_id)
    if row is None:
        row = GuildSettings(guild_id=guild_id)
        session.add(row)
    return row


async def save_policy(session: AsyncSession, *, guild_id: int, policy: dict[str, Any]) -> None:
    row = await _settings(session, guild_id)
    row.policy, row.updated_at = policy, utcnow()
    await session.flush()


async def set_mod_channel(session: AsyncSession, *, guild_id: int, channel_id: int | None) -> None:
    row = await _settings(session, guild_id)
    row.mod_channel_id, row.updated_at = channel_id, utcnow()
    await session.flush()


async def scrub_user_cases(session: AsyncSession, *, user_id: int) -> int:
    """Blank the prompt text of the cases about a member (/forget); the decisions themselves stay.
    Returns the number of cases that held text."""
    cases = (await session.execute(select(ModerationCase).where(ModerationCase.user_id == user_id))).scalars().all()
    changed = 0
    for case in cases:
        details = {k: v for k, v in (case.details or {}).items() if k != "matched"}
        if case.prompt or case.negative or case.normalized or details != (case.details or {}):
            case.prompt, case.negative, case.normalized, case.details = "", "", "", details
            changed += 1
    await session.flush()
    return changed


async def purge_job(session: AsyncSession, *, job_id: int) -> None:
    """A moderator removed this result: drop its files, keep the job row (marked) for the record."""
    from sqlalchemy import update

    from db.models import Job, Output

    await session.execute(delete(Output).where(Output.job_id == job_id))
    await session.execute(update(Job).where(Job.id == job_id).values(notice="Removed by a moderator."))
