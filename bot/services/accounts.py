"""Accounts: what a job costs, who may spend what, and what we keep about a member (and for how long).

Cost model (credits, computed from the job's parameters before it runs):

    credits = ceil(count x frames x (width x height / 512²) x steps / 5)

so one 512x512 image at 25 steps costs 5 credits, an SDXL 1024x1024 image at 30 steps 24, a
4-step SDXL-Lightning image 4 and a 1-step SDXL-Turbo image 1; never less than 1. Credits grow
linearly with pixels, steps, frames (animations) and images, which is roughly GPU time.

Allowance per member per UTC day, first match wins: the member's override in that guild; the best
of their roles' tiers; the guild's default; the owner's global default (ATELIER_DEFAULT_DAILY_CREDITS).
A negative allowance means unlimited. Credits are reserved when a job is queued, charged when it is
delivered and refunded when it fails or is canceled; a job refused while queuing (moderation, queue
caps) rolls back with its reservation. Jobs started by a button or reaction belong to whoever pressed.

No discord import: the cogs hand in role ids through `roles_of`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import InvalidOption, QuotaExceeded, UnknownJob
from bot.services.jobs import JobService, Origin, Ticket, starts_in
from db import queue as job_queue
from db.models import Job, JobStatus
from db.models_accounts import NO_GUILD, QuotaScope
from db.repositories import accounts as repo
from db.repositories import jobs as jobs_repo
from inference.media import TooLarge, fit_to_limit
from inference.video import GIF, MP4, VideoTooLarge, fit_video, sniff_mime

log = logging.getLogger(__name__)

REFERENCE_PIXELS = 512 * 512
STEPS_PER_CREDIT = 5
# The pre-acknowledgement quota check answers from a snapshot of the member's allowance and usage.
# A snapshot read from the database within SNAPSHOT_SECONDS may refuse a job; one up to
# SNAPSHOT_KEPT_SECONDS old, or one this process has since added its own reservations to, may only
# let a job through (the reservation at submission decides, and refuses privately too; it also
# leaves the member a snapshot). Otherwise, while the bot is quiet, the member's allowance and usage
# are read for at most PRECHECK_BUDGET seconds (the read goes on in the background and fills the
# snapshot for their next command); while other commands are waiting for their acknowledgement too
# (a burst: the acknowledgements matter more) nothing is read and the command is let through.
SNAPSHOT_SECONDS = 30.0
SNAPSHOT_KEPT_SECONDS = 600.0
PRECHECK_BUDGET = 0.2
PRECHECK_BUDGET_BURST = 0.0


def _env_int(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"Invalid setting {name}: must be a whole number") from None


def job_cost(params: dict[str, Any]) -> int:
    """The documented cost model (see the module docstring)."""
    pixels = int(params.get("width", 512)) * int(params.get("height", 512))
    units = (int(params.get("count", 1)) * int(params.get("frames", 1)) * pixels / REFERENCE_PIXELS
             * int(params.get("steps", 1)) / STEPS_PER_CREDIT)
    return max(1, math.ceil(round(units, 6)))


def day_of(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def next_reset(when: datetime) -> datetime:
    start = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start + timedelta(days=1)


@dataclass(slots=True)
class QuotaStatus:
    allowance: int | None  # None: unlimited
    used: int
    source: str            # which rule set the allowance, in words
    resets_at: datetime

    @property
    def left(self) -> int | None:
        return None if self.allowance is None else max(self.allowance - self.used, 0)


@dataclass(slots=True)
class _Snapshot:
    """What the pre-acknowledgement check needs to know about one member in one guild today."""

    allowance: int | None
    source: str
    used: int
    day: str
    taken: float  # loop time of the read
    exact: bool = True  # False once this process added a reservation to ``used`` (it may be high)


@dataclass(slots=True)
class QueueEntry:
    job: Job
    position: int | None  # 1-based among queued jobs; None while running
    eta_seconds: float | None


@dataclass(slots=True)
class HistoryPage:
    jobs: list[Job]
    page: int
    pages: int
    total: int


def _fits(snap: _Snapshot, cost: int) -> bool:
    return snap.allowance is None or snap.used + cost <= snap.allowance


class AccountService:
    """Quota policy and the ledger listener; history, export, forget and retention."""

    def __init__(self, jobs: JobService, *, default_daily: int | None = None,
                 roles_of: Callable[[int, int], Iterable[int]] | None = None,
                 default_retention_days: int | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.jobs = jobs
        self.sessions = jobs.sessions
        # ATELIER_DEFAULT_DAILY_CREDITS: the owner's global default (negative: unlimited).
        self.default_daily = default_daily if default_daily is not None else _env_int(
            "ATELIER_DEFAULT_DAILY_CREDITS", 250)
        # ATELIER_RETENTION_DAYS: history kept where a guild set nothing (0 or unset: forever).
        self.default_retention_days = default_retention_days if default_retention_days is not None else _env_int(
            "ATELIER_RETENTION_DAYS", 90)
        self.roles_of = roles_of or (lambda guild_id, user_id: ())
        self.clock = clock
        # (guild key, user id) -> snapshot, and the reads filling them (one per key at a time).
        self._snapshots: dict[tuple[int, int], _Snapshot] = {}
        self._loading: dict[tuple[int, int], asyncio.Task[_Snapshot]] = {}
        self._waiting = 0  # pre-acknowledgement checks waiting for a snapshot right now

    # ----- policy -----

    async def _allowance(self, session: AsyncSession, guild_id: int | None, user_id: int) -> tuple[int | None, str]:
        def norm(value: int | None) -> int | None:
            return None if value is None or value < 0 else value

        if guild_id is not None:
            settings = await repo.quota_settings(session, guild_id=guild_id)
            member = [s for s in settings if s.scope == QuotaScope.member and s.target_id == user_id]
            if member:
                return norm(member[0].daily_credits), "your personal allowance"
            roles = set(self.roles_of(guild_id, user_id))
            tiers = [s.daily_credits for s in settings if s.scope == QuotaScope.role and s.target_id in roles]
            if tiers:
                best = None if any(t < 0 for t in tiers) else max(tiers)
                return best, "your role's tier"
            default = [s for s in settings if s.scope == QuotaScope.guild]
            if default:
                return norm(default[0].daily_credits), "this server's default"
        return norm(self.default_daily), "the bot's default"

    async def status(self, *, user_id: int, guild_id: int | None) -> QuotaStatus:
        now = self.clock()
        async with self.sessions() as session:
            allowance, source = await self._allowance(session, guild_id, user_id)
            used = await repo.used_today(session, user_id=user_id, guild_id=guild_id or NO_GUILD, day=day_of(now))
        return QuotaStatus(allowance, used, source, next_reset(now))

    # ----- JobService listener (runs inside the job's transaction) -----

    async def before_acknowledge(self, params: dict[str, Any], origin: Origin) -> None:
        """Before a command is acknowledged: refuse, ephemerally, a job the member can't afford.

        Answers from an in-memory snapshot (see SNAPSHOT_SECONDS) so that a burst of commands is
        acknowledged at once rather than queueing on the database; a member without a fresh
        snapshot waits at most PRECHECK_BUDGET for it. Only a courtesy: the atomic reservation in
        before_submit decides, and its refusal is private too (bot.ui.tree.reply)."""
        cost = job_cost(params)
        today = day_of(self.clock())
        key = (origin.guild_id or NO_GUILD, origin.user_id)
        loop = asyncio.get_running_loop()
        snap = self._snapshots.get(key)
        age = loop.time() - snap.taken if snap is not None and snap.day == today else math.inf
        if age <= SNAPSHOT_KEPT_SECONDS and snap is not None and _fits(snap, cost):
            return  # let through without a read; the reservation at submission decides
        if snap is None or age > SNAPSHOT_SECONDS or not snap.exact:  # too old or inexact to refuse
            acks = self.jobs.acks
            burst = self._waiting > 0 or (acks is not None and acks.unanswered() > 1)
            task = self._loading.get(key)
            if task is None:
                if burst:  # acknowledge now, read nothing: the reservation at submission decides and
                    return  # leaves the member a snapshot (a read per command would slow the burst)
                task = loop.create_task(self._snapshot(key, origin.guild_id, origin.user_id, today))
                self._loading[key] = task
                task.add_done_callback(lambda _t: self._loading.pop(key, None))
            budget = PRECHECK_BUDGET_BURST if burst else PRECHECK_BUDGET
            self._waiting += 1
            try:
                snap = await asyncio.wait_for(asyncio.shield(task), budget)
            except TimeoutError:
                log.debug("quota snapshot for %s not ready in %.2f s; checked at submission", key, budget)
                return
            finally:
                self._waiting -= 1
        if not _fits(snap, cost):
            raise self._exceeded(cost, max((snap.allowance or 0) - snap.used, 0), snap.allowance, snap.source,
                                 self.clock())

    async def _snapshot(self, key: tuple[int, int], guild_id: int | None, user_id: int, day: str) -> _Snapshot:
        async with self.jobs.reads() as session:
            allowance, source = await self._allowance(session, guild_id, user_id)
            used = 0 if allowance is None else await repo.used_today(session, user_id=user_id, guild_id=key[0], day=day)
        return self._keep(key, _Snapshot(allowance, source, used, day, asyncio.get_running_loop().time()))

    def _keep(self, key: tuple[int, int], snap: _Snapshot) -> _Snapshot:
        if key not in self._snapshots and len(self._snapshots) >= 10_000:  # bounded: the stale go first
            for stale in [k for k, v in self._snapshots.items() if snap.taken - v.taken > SNAPSHOT_KEPT_SECONDS]:
                del self._snapshots[stale]
            while len(self._snapshots) >= 10_000:  # still full of young ones: the oldest go
                del self._snapshots[next(iter(self._snapshots))]
        self._snapshots[key] = snap
        return snap

    def _forget_snapshots(self, *, guild_id: int | None = None, user_id: int | None = None) -> None:
        """Usage or allowances changed: drop the snapshots they could have made wrong."""
        for key in [k for k in self._snapshots if (guild_id is None or k[0] == guild_id)
                    and (user_id is None or k[1] == user_id)]:
            del self._snapshots[key]

    def _exceeded(self, cost: int, left: int, allowance: int | None, source: str, now: datetime) -> QuotaExceeded:
        reset = int(next_reset(now).timestamp())
        return QuotaExceeded(f"This job costs {cost} credits and you have {left} of {allowance} left today "
                             f"({source}). Credits reset <t:{reset}:R>; fewer steps, a smaller size or "
                             "fewer images cost less.")

    async def screen(self, params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """Before the job's row is written: it records what the job costs (reserved in before_submit)."""
        return {**params, "credits": job_cost(params)}

    async def before_submit(self, session: AsyncSession, job: Job, origin: Origin) -> None:
        cost = job_cost(job.params)
        now = self.clock()
        allowance, source = await self._allowance(session, job.guild_id, job.user_id)
        guild_key = job.guild_id or NO_GUILD
        used = await repo.reserve(session, job_id=job.id, user_id=job.user_id, guild_id=guild_key,  # type: ignore[arg-type]
                                  day=day_of(now), credits=cost, allowance=allowance)
        key, taken = (guild_key, job.user_id), asyncio.get_running_loop().time()
        if used is None:
            used = await repo.used_today(session, user_id=job.user_id, guild_id=guild_key, day=day_of(now))
            # what was just read is exact: the member's next command is refused before acknowledging
            self._keep(key, _Snapshot(allowance, source, used, day_of(now), taken))
            raise self._exceeded(cost, max((allowance or 0) - used, 0), allowance, source, now)
        if job.params.get("credits") != cost:  # not screened: the row is updated
            job.params = {**job.params, "credits": cost}
        # The member's next command is checked against what they have left, without a read. Inexact:
        # this transaction may still roll back, so the snapshot may let commands through, not refuse.
        self._keep(key, _Snapshot(allowance, source, used, day_of(now), taken, exact=False))

    async def on_delivered(self, session: AsyncSession, job: Job) -> None:
        await repo.charge(session, job_id=job.id)  # type: ignore[arg-type]

    async def on_ended(self, session: AsyncSession, job: Job) -> None:
        await repo.refund(session, job_id=job.id)  # type: ignore[arg-type]
        self._forget_snapshots(guild_id=job.guild_id or NO_GUILD, user_id=job.user_id)

    # ----- admin -----

    async def set_quota(self, *, guild_id: int, scope: QuotaScope, target_id: int, credits: int | None) -> None:
        if credits is not None and credits > 1_000_000:
            raise InvalidOption("Allowances are capped at 1,000,000 credits a day; use -1 for unlimited.")
        async with self.sessions.begin() as session:
            await repo.set_quota(session, guild_id=guild_id, scope=scope, target_id=target_id, daily_credits=credits)
        self._forget_snapshots(guild_id=guild_id)

    async def set_retention(self, *, guild_id: int, days: int | None) -> None:
        if days is not None and not 1 <= days <= 3650:
            raise InvalidOption(f"Retention must be 1-3650 days; you gave {days}.")
        async with self.sessions.begin() as session:
            await repo.set_retention(session, guild_id=guild_id, days=days)

    async def retention_for(self, guild_id: int | None) -> int | None:
        async with self.sessions() as session:
            per_guild = await repo.retention_days(session)
        days = per_guild.get(guild_id) if guild_id is not None else None
        days = days if days is not None else self.default_retention_days
        return days if days and days > 0 else None

    async def stats(self, *, guild_id: int, days: int = 7) -> dict[str, Any]:
        async with self.sessions() as session:
            return await repo.job_stats(session, guild_id=guild_id, since=self.clock() - timedelta(days=days))

    # ----- queue -----

    async def queue(self, *, user_id: int) -> list[QueueEntry]:
        """The member's active jobs with their place in the scheduler's order and a start estimate."""
        entries = []
        async with self.sessions() as session:
            for job in await repo.active_jobs(session, user_id=user_id):
                if job.status == JobStatus.running:
                    entries.append(QueueEntry(job, None, None))
                    continue
                position, _ = await job_queue.queue_position(session, job=job)
                per_job, running = await jobs_repo.run_times(session, model=job.model)
                entries.append(QueueEntry(job, position, starts_in(per_job, position, running, self.jobs.workers)))
        return entries

    async def cancel(self, *, user_id: int, job_id: int | None, is_admin: bool = False,
                     guild_id: int | None = None) -> tuple[int, str]:
        """Cancel the given job, or the member's newest active one; returns (job id, previous status)."""
        if job_id is None:
            async with self.sessions() as session:
                job = await repo.latest_active_job(session, user_id=user_id)
            if job is None:
                raise UnknownJob("You have no queued or running jobs.")
            job_id = job.id
        previous = await self.jobs.cancel(job_id=job_id, user_id=user_id, is_admin=is_admin,  # type: ignore[arg-type]
                                          guild_id=guild_id)
        return job_id, previous  # type: ignore[return-value]

    # ----- history -----

    async def history(self, *, user_id: int, command: str | None = None, page: int = 1,
                      per_page: int = 5) -> HistoryPage:
        page = max(page, 1)
        async with self.sessions() as session:
            jobs, total = await repo.history(session, user_id=user_id, command=command,
                                             offset=(page - 1) * per_page, limit=per_page)
        pages = max(math.ceil(total / per_page), 1)
        if page > pages and total:
            return await self.history(user_id=user_id, command=command, page=pages, per_page=per_page)
        return HistoryPage(jobs, page, pages, total)

    async def finished_job(self, job_id: int) -> Job:
        job = await self.jobs.get_job(job_id)
        if job is None:
            raise UnknownJob(f"There is no job #{job_id} (it may have been forgotten or pruned).")
        if job.status != JobStatus.completed:
            raise InvalidOption(f"Job #{job_id} is {job.status}; only finished images can be shown.")
        return job

    async def result_file(self, job_id: int, limit: int) -> tuple[bytes, str]:
        """The job's posted image (the grid for several) or video, re-encoded off the loop to fit `limit`
        bytes, and the file extension it now has."""
        async with self.sessions() as session:
            outputs = await jobs_repo.get_outputs(session, job_id=job_id)
        if not outputs:
            raise UnknownJob(f"The images of job #{job_id} are no longer stored.")
        grid = [o for o in outputs if o.index == -1]
        data = (grid or outputs)[0].data
        if sniff_mime(data) in (MP4, GIF):  # an /animate result: posted as the video it is, never as a .png
            try:
                return await asyncio.to_thread(fit_video, data, limit)
            except VideoTooLarge:
                raise InvalidOption(f"Job #{job_id}'s video cannot be made smaller than this channel's upload "
                                    f"limit ({limit / 2**20:.1f} MiB).") from None
        try:
            return await asyncio.to_thread(fit_to_limit, (grid or outputs)[0].data, limit)
        except TooLarge:
            raise InvalidOption(f"Job #{job_id}'s image cannot be made smaller than this channel's upload "
                                f"limit ({limit / 2**20:.1f} MiB).") from None

    async def rerun(self, *, job_id: int, origin: Origin) -> Ticket:
        """The same job again, same seed, for (and charged to) whoever asked."""
        parent = await self.jobs.get_job(job_id)
        if parent is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been forgotten or pruned).")
        if parent.model not in self.jobs.registry.names():
            raise InvalidOption(f"The model {parent.model!r} of job #{job_id} is no longer installed.")
        params = {k: v for k, v in parent.params.items() if k != "credits"}
        return await self.jobs.submit(command=parent.command, params=params, origin=origin, parent_job_id=parent.id)

    # ----- privacy -----

    async def export(self, *, user_id: int) -> bytes:
        """Everything stored about the member, as JSON (images are linked, not embedded): their jobs,
        credit ledger and the moderation cases about them. Built off the event loop: a member with
        years of history makes a large document."""
        async with self.sessions() as session:
            jobs = await repo.all_user_jobs(session, user_id=user_id)
            ledger = await repo.ledger_entries(session, user_id=user_id)
            cases = await repo.member_cases(session, user_id=user_id)
        return await asyncio.to_thread(_export_document, user_id, self.clock(), jobs, ledger, cases)

    async def forget(self, *, user_id: int) -> dict[str, int]:
        """Remove the member's personal data (see db.repositories.accounts.forget_user for what is
        kept, and why). Their active jobs are canceled first (and refunded)."""
        async with self.sessions() as session:
            active = await repo.active_jobs(session, user_id=user_id)
        for job in active:
            try:
                await self.jobs.cancel(job_id=job.id, user_id=user_id)  # type: ignore[arg-type]
            except Exception:  # already finished meanwhile: it is deleted below anyway
                log.debug("job %s ended before /forget could cancel it", job.id)
        async with self.sessions.begin() as session:
            deleted = await repo.forget_user(session, user_id=user_id, today=day_of(self.clock()))
        self._forget_snapshots(user_id=user_id)
        log.info("forgot user %s: %s", user_id, deleted)
        return deleted

    async def prune(self) -> int:
        """Apply each guild's retention; returns the number of jobs deleted."""
        now = self.clock()
        async with self.sessions() as session:
            per_guild = await repo.retention_days(session)
            guilds = await repo.guild_ids_with_jobs(session)
        removed = 0
        for guild_id in guilds:
            days = per_guild.get(guild_id) if guild_id is not None else None
            days = days if days is not None else self.default_retention_days
            if not days or days <= 0:
                continue
            async with self.sessions.begin() as session:
                removed += await repo.prune(session, guild_id=guild_id, before=now - timedelta(days=days))
        if removed:
            log.info("retention: deleted %d old jobs", removed)
        return removed


def _export_document(user_id: int, now: datetime, jobs: list[Job], ledger: list[Any], cases: list[Any]) -> bytes:
    data = {
        "user_id": str(user_id),
        "exported_at": now.isoformat(),
        "jobs": [{
            "id": j.id, "command": j.command, "status": j.status, "prompt": j.prompt, "model": j.model,
            "seed": j.seed, "params": j.params, "guild_id": _s(j.guild_id), "channel_id": _s(j.channel_id),
            "message_id": _s(j.message_id), "link": message_link(j),
            "created_at": _iso(j.created_at), "finished_at": _iso(j.finished_at), "error": j.error,
        } for j in jobs],
        "credits": [{"job_id": e.job_id, "kind": e.kind, "credits": e.credits, "day": e.day,
                     "guild_id": _s(e.guild_id or None)} for e in ledger],
        # What moderation recorded about the member (who moderated is not theirs to export).
        "moderation_cases": [{
            "id": c.id, "guild_id": _s(c.guild_id), "channel_id": _s(c.channel_id), "job_id": c.job_id,
            "action": c.action, "categories": c.categories, "reason": c.reason, "prompt": c.prompt,
            "negative": c.negative, "review_requested": c.review_requested, "created_at": _iso(c.created_at),
        } for c in cases],
    }
    return json.dumps(data, indent=2, ensure_ascii=False).encode()


def message_link(job: Job) -> str | None:
    if job.message_id is None or job.channel_id is None:
        return None
    return f"https://discord.com/channels/{job.guild_id or '@me'}/{job.channel_id}/{job.message_id}"


def _s(value: int | None) -> str | None:
    return None if value is None else str(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
