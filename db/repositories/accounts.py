"""Quota, ledger, history and privacy queries. Keyword-only, take the caller's session, never commit."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Integer,
    String,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.engine import upsert_insert
from db.models import ACTIVE_STATUSES, Job, JobInput, JobStatus, Output, User, utcnow
from db.models_accounts import AccountGuildSettings, CreditEntry, LedgerKind, QuotaSetting, QuotaUsage
from db.models_moderation import ModerationCase
from db.repositories import moderation as mod_repo
from db.repositories import preferences as prefs_repo

# ----- quota settings -----


async def quota_settings(session: AsyncSession, *, guild_id: int) -> list[QuotaSetting]:
    result = await session.execute(select(QuotaSetting).where(QuotaSetting.guild_id == guild_id))
    return list(result.scalars().all())


async def set_quota(session: AsyncSession, *, guild_id: int, scope: str, target_id: int,
                    daily_credits: int | None) -> None:
    """Set (or, with None, remove) one allowance."""
    row = (await session.execute(select(QuotaSetting).where(
        QuotaSetting.guild_id == guild_id, QuotaSetting.scope == scope, QuotaSetting.target_id == target_id,
    ))).scalars().first()
    if daily_credits is None:
        if row is not None:
            await session.delete(row)
    elif row is None:
        session.add(QuotaSetting(guild_id=guild_id, scope=scope, target_id=target_id, daily_credits=daily_credits))
    else:
        row.daily_credits = daily_credits
        row.updated_at = utcnow()
    await session.flush()


# ----- usage and ledger -----


async def used_today(session: AsyncSession, *, user_id: int, guild_id: int, day: str) -> int:
    value = await session.scalar(select(QuotaUsage.used).where(
        QuotaUsage.user_id == user_id, QuotaUsage.guild_id == guild_id, QuotaUsage.day == day))
    return int(value or 0)


async def reserve(session: AsyncSession, *, job_id: int, user_id: int, guild_id: int, day: str, credits: int,
                  allowance: int | None) -> int | None:
    """Hold `credits` for a job if the day's usage stays within `allowance` (None: unlimited); the
    day's usage with them, or None when they do not fit.

    One guarded statement decides, so concurrent reservations can never overspend: an INSERT of
    the day's row that adds to it on conflict only while it stays within the allowance, returning
    the day's usage."""
    if allowance is not None and credits > allowance:
        return None
    key = {"user_id": user_id, "guild_id": guild_id, "day": day}
    result = await session.execute(_reserve_query(session.bind.dialect.name, allowance is not None),
                                   {**key, "credits": credits, "allowance": allowance})
    used = result.scalar()
    if used is None:
        return None
    await session.execute(_ledger_insert(), {"job_id": job_id, **key, "kind": LedgerKind.reserve.value,
                                             "credits": credits, "created_at": utcnow()})
    return int(used)


@functools.cache
def _reserve_query(dialect: str, limited: bool) -> Any:
    """The day's row inserted with ``:credits``, or ``:credits`` added to it (within ``:allowance``
    when ``limited``), returning its usage; no row back when the allowance would be passed."""
    usage = QuotaUsage.__table__  # the table: an ORM INSERT given parameters is a bulk insert of them
    upsert = upsert_insert(dialect)(usage).values(
        user_id=bindparam("user_id", type_=BigInteger), guild_id=bindparam("guild_id", type_=BigInteger),
        day=bindparam("day", type_=String), used=bindparam("credits", type_=Integer))
    added = usage.c.used + upsert.excluded.used
    upsert = upsert.on_conflict_do_update(
        index_elements=[usage.c.user_id, usage.c.guild_id, usage.c.day], set_={"used": added},
        where=(added <= bindparam("allowance", type_=Integer)) if limited else None)
    return upsert.returning(usage.c.used)


@functools.cache
def _ledger_insert() -> Any:
    return insert(CreditEntry.__table__)


async def _open_reservation(session: AsyncSession, *, job_id: int) -> CreditEntry | None:
    """The job's reservation, if it was neither charged nor refunded yet."""
    entries = (await session.execute(select(CreditEntry).where(CreditEntry.job_id == job_id))).scalars().all()
    kinds = {e.kind for e in entries}
    if LedgerKind.charge in kinds or LedgerKind.refund in kinds:
        return None
    return next((e for e in entries if e.kind == LedgerKind.reserve), None)


async def charge(session: AsyncSession, *, job_id: int) -> int:
    """Turn the job's reservation into a charge; returns the credits charged (0 if nothing was open).

    Every delivered job comes here, so it is one INSERT ... SELECT copying the open reservation."""
    charged = await session.execute(_charge_query(), {"job_id": job_id, "now": utcnow()})
    return int(charged.scalar() or 0)


@functools.cache
def _charge_query() -> Any:
    """INSERT ... SELECT ... RETURNING copying job ``:job_id``'s open reservation as a charge at
    ``:now``. Built once rather than on the event loop at every delivery."""
    job_id = bindparam("job_id", type_=BigInteger)
    reserve = aliased(CreditEntry)
    closed = select(CreditEntry.id).where(CreditEntry.job_id == job_id,
                                          CreditEntry.kind.in_([LedgerKind.charge, LedgerKind.refund]))
    source = select(reserve.job_id, reserve.user_id, reserve.guild_id, reserve.day,
                    literal(LedgerKind.charge.value, String), reserve.credits,
                    bindparam("now", type_=DateTime(timezone=True))).where(
        reserve.job_id == job_id, reserve.kind == LedgerKind.reserve, ~closed.exists())
    # The table, not the entity: an ORM INSERT given parameters at execution is a bulk insert of them.
    ledger = CreditEntry.__table__
    copied = insert(ledger).from_select(["job_id", "user_id", "guild_id", "day", "kind", "credits", "created_at"],
                                        source)
    return copied.returning(ledger.c.credits)


async def refund(session: AsyncSession, *, job_id: int) -> int:
    """Give the job's reservation back to the day it was taken from; returns the credits refunded."""
    held = await _open_reservation(session, job_id=job_id)
    if held is None:
        return 0
    session.add(CreditEntry(job_id=job_id, user_id=held.user_id, guild_id=held.guild_id, day=held.day,
                            kind=LedgerKind.refund, credits=held.credits))
    await session.execute(update(QuotaUsage).where(
        QuotaUsage.user_id == held.user_id, QuotaUsage.guild_id == held.guild_id, QuotaUsage.day == held.day,
    ).values(used=QuotaUsage.used - held.credits))
    await session.flush()
    return held.credits


async def ledger_totals(session: AsyncSession, *, user_id: int | None = None) -> dict[str, int]:
    query = select(CreditEntry.kind, func.coalesce(func.sum(CreditEntry.credits), 0)).group_by(CreditEntry.kind)
    if user_id is not None:
        query = query.where(CreditEntry.user_id == user_id)
    totals = {k.value: 0 for k in LedgerKind}
    for kind, total in (await session.execute(query)).all():
        totals[kind] = int(total)
    return totals


async def ledger_entries(session: AsyncSession, *, user_id: int) -> list[CreditEntry]:
    result = await session.execute(select(CreditEntry).where(CreditEntry.user_id == user_id).order_by(CreditEntry.id))
    return list(result.scalars().all())


async def total_usage(session: AsyncSession, *, user_id: int | None = None) -> int:
    query = select(func.coalesce(func.sum(QuotaUsage.used), 0))
    if user_id is not None:
        query = query.where(QuotaUsage.user_id == user_id)
    return int(await session.scalar(query) or 0)


# ----- queue and history -----


async def active_jobs(session: AsyncSession, *, user_id: int) -> list[Job]:
    """The member's queued and running jobs, oldest first."""
    result = await session.execute(select(Job).where(
        Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id))
    return list(result.scalars().all())


async def latest_active_job(session: AsyncSession, *, user_id: int) -> Job | None:
    result = await session.execute(select(Job).where(
        Job.user_id == user_id, Job.status.in_(ACTIVE_STATUSES)).order_by(Job.id.desc()).limit(1))
    return result.scalars().first()


async def history(session: AsyncSession, *, user_id: int, command: str | None, offset: int,
                  limit: int) -> tuple[list[Job], int]:
    """The member's finished generations, newest first, and how many there are."""
    where = [Job.user_id == user_id, Job.status == JobStatus.completed]
    if command:
        where.append(Job.command == command)
    total = int(await session.scalar(select(func.count()).select_from(Job).where(*where)) or 0)
    result = await session.execute(select(Job).where(*where).order_by(Job.id.desc()).offset(offset).limit(limit))
    return list(result.scalars().all()), total


async def all_user_jobs(session: AsyncSession, *, user_id: int) -> list[Job]:
    result = await session.execute(select(Job).where(Job.user_id == user_id).order_by(Job.id))
    return list(result.scalars().all())


# ----- privacy -----


async def member_cases(session: AsyncSession, *, user_id: int) -> list[ModerationCase]:
    """The moderation cases about a member (for their export), oldest first."""
    result = await session.execute(select(ModerationCase).where(ModerationCase.user_id == user_id)
                                   .order_by(ModerationCase.id))
    return list(result.scalars().all())


async def forget_user(session: AsyncSession, *, user_id: int, today: str) -> dict[str, int]:
    """Remove the member's personal data, table by table (an explicit list, so a new table is a
    decision, not an accident). Returns rows changed per table.

    Removed: their jobs (prompts, parameters), their uploads and outputs (images), their credit ledger (what each
    job cost), their usage of past days, their /settings defaults, their name. Kept: today's usage (forgetting must not hand
    out a fresh allowance), bans and per-member allowances (server decisions about the member, which
    forgetting must not lift), and moderation cases about them with the prompt text blanked. Rows
    where the member acted as a moderator are not theirs and stay as they are."""
    deleted: dict[str, int] = {}
    ids = select(Job.id).where(Job.user_id == user_id)
    deleted["outputs"] = (await session.execute(delete(Output).where(Output.job_id.in_(ids)))).rowcount or 0
    # Uploaded images: their job's delete cascades too, but the list names every table it clears.
    deleted["job_inputs"] = (await session.execute(delete(JobInput).where(JobInput.job_id.in_(ids)))).rowcount or 0
    deleted["jobs"] = (await session.execute(delete(Job).where(Job.user_id == user_id))).rowcount or 0
    deleted["credit_ledger"] = (await session.execute(
        delete(CreditEntry).where(CreditEntry.user_id == user_id))).rowcount or 0
    deleted["quota_usage"] = (await session.execute(delete(QuotaUsage).where(
        QuotaUsage.user_id == user_id, QuotaUsage.day != today))).rowcount or 0
    deleted["moderation_cases"] = await mod_repo.scrub_user_cases(session, user_id=user_id)
    deleted["member_preferences"] = await prefs_repo.delete_member(session, user_id=user_id)
    deleted["users"] = (await session.execute(delete(User).where(User.id == user_id))).rowcount or 0
    return {k: v for k, v in deleted.items() if v}


async def retention_days(session: AsyncSession) -> dict[int, int | None]:
    rows = (await session.execute(select(AccountGuildSettings))).scalars().all()
    return {r.guild_id: r.retention_days for r in rows}


async def set_retention(session: AsyncSession, *, guild_id: int, days: int | None) -> None:
    row = await session.get(AccountGuildSettings, guild_id)
    if row is None:
        session.add(AccountGuildSettings(guild_id=guild_id, retention_days=days))
    else:
        row.retention_days = days
        row.updated_at = utcnow()
    await session.flush()


async def guild_ids_with_jobs(session: AsyncSession) -> list[int | None]:
    """Guilds (None: direct messages) with jobs or moderation cases, the history retention prunes."""
    query = union(select(Job.guild_id).distinct(), select(ModerationCase.guild_id).distinct())
    return list((await session.execute(query)).scalars().all())


async def prune(session: AsyncSession, *, guild_id: int | None, before: datetime) -> int:
    """Delete one guild's finished jobs (with outputs) created before `before`, and its ledger entries
    from those days. Active jobs are never pruned. Returns the number of jobs deleted."""
    where = [Job.created_at < before, Job.status.not_in(ACTIVE_STATUSES), Job.delivered.is_(True)]
    where.append(Job.guild_id.is_(None) if guild_id is None else Job.guild_id == guild_id)
    ids = select(Job.id).where(*where)
    await session.execute(delete(Output).where(Output.job_id.in_(ids)))
    count = (await session.execute(delete(Job).where(*where))).rowcount or 0
    day = before.strftime("%Y-%m-%d")
    guild_key = 0 if guild_id is None else guild_id
    active = select(Job.id).where(Job.status.in_(ACTIVE_STATUSES))
    await session.execute(delete(CreditEntry).where(CreditEntry.guild_id == guild_key, CreditEntry.day < day,
                                                    CreditEntry.job_id.not_in(active)))
    await session.execute(delete(QuotaUsage).where(QuotaUsage.guild_id == guild_key, QuotaUsage.day < day))
    # Moderation cases age out with the jobs they are about (bans live apart and stay).
    guild = ModerationCase.guild_id.is_(None) if guild_id is None else ModerationCase.guild_id == guild_id
    await session.execute(delete(ModerationCase).where(guild, ModerationCase.created_at < before))
    return count


# ----- stats -----


async def job_stats(session: AsyncSession, *, guild_id: int, since: datetime) -> dict[str, Any]:
    where = [Job.guild_id == guild_id, Job.created_at >= since]
    by_status = dict((await session.execute(
        select(Job.status, func.count()).where(*where).group_by(Job.status))).all())
    gpu = await session.scalar(select(func.coalesce(func.sum(Job.run_seconds), 0.0)).where(*where))
    models = (await session.execute(select(Job.model, func.count()).where(*where).group_by(Job.model)
                                    .order_by(func.count().desc()).limit(3))).all()
    created = (await session.execute(select(Job.created_at).where(*where))).scalars().all()
    per_day: dict[str, int] = {}
    for ts in created:
        key = ts.strftime("%Y-%m-%d")
        per_day[key] = per_day.get(key, 0) + 1
    members = int(await session.scalar(select(func.count(func.distinct(Job.user_id))).where(*where)) or 0)
    return {"by_status": {str(k): int(v) for k, v in by_status.items()}, "gpu_seconds": float(gpu or 0.0),
            "top_models": [(m, int(n)) for m, n in models], "per_day": per_day, "members": members}
