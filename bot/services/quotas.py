"""Quotas: what a job costs in credits, and who may spend how many.

Cost model (credits, computed from the job's parameters before it runs):

    credits = ceil(count x frames x (width x height / 512²) x steps / 5)

so one 512x512 image at 25 steps costs 5 credits, an SDXL 1024x1024 image at 30 steps 24, a
4-step SDXL-Lightning image 4 and a 1-step SDXL-Turbo image 1; never less than 1. Hires fix adds
its second pass: int(steps x hires_strength) steps at the final size (hires² times the pixels), so a
512x512 25-step image with hires 2 at 0.4 costs 5 + 8 = 13. Credits grow
linearly with pixels, steps, frames (animations) and images, which is roughly GPU time.

Allowance per member per UTC day, first match wins: the member's override in that guild; the best
of their roles' tiers; the guild's default; the owner's global default (ATELIER_DEFAULT_DAILY_CREDITS).
A negative allowance means unlimited. Credits are reserved when a job is queued, charged when it is
delivered and refunded when it fails or is canceled; a job refused while queuing (moderation, queue
caps) rolls back with its reservation. Jobs started by a button or reaction belong to whoever pressed.

No discord import: role ids come through `roles_of` (bot/ui/roles.py, wired in bot/client.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import InvalidOption, QuotaExceeded
from bot.services.hooks import Origin, Submission
from bot.services.jobs import JobService
from db.models import Job
from db.models_accounts import NO_GUILD, QuotaScope
from db.repositories import accounts as repo

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


def job_credits(params: dict[str, Any]) -> int:
    """The documented cost model (see the module docstring)."""
    pixels = int(params.get("width", 512)) * int(params.get("height", 512))
    steps = int(params.get("steps", 1))
    work = pixels * steps
    hires = float(params.get("hires") or 0.0)
    if hires > 0:  # the second pass (inference/runners/hires.py schedules int(steps x strength) steps)
        work += pixels * hires * hires * max(1, math.floor(steps * float(params.get("hires_strength") or 0.4)))
    units = int(params.get("count", 1)) * int(params.get("frames", 1)) * work / REFERENCE_PIXELS / STEPS_PER_CREDIT
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


def _fits(snap: _Snapshot, cost: int) -> bool:
    return snap.allowance is None or snap.used + cost <= snap.allowance


class Quotas:
    """Allowances, the credit ledger's hooks, and a per-member snapshot for checks made before an
    acknowledgement."""

    def __init__(self, jobs: JobService, *, default_daily: int = 250,
                 roles_of: Callable[[int, int], Iterable[int]] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.jobs = jobs
        self.sessions = jobs.sessions
        # ATELIER_DEFAULT_DAILY_CREDITS: the owner's global default (negative: unlimited).
        self.default_daily = default_daily
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

    # ----- job service hooks (bot/services/hooks.py) -----

    async def before_acknowledge(self, params: dict[str, Any], origin: Origin) -> None:
        """Before a command is acknowledged: refuse, ephemerally, a job the member can't afford.

        Answers from an in-memory snapshot (see SNAPSHOT_SECONDS) so that a burst of commands is
        acknowledged at once rather than queueing on the database; a member without a fresh
        snapshot waits at most PRECHECK_BUDGET for it. Only a courtesy: the atomic reservation in
        before_submit decides, and its refusal is private too (bot.ui.tree.reply)."""
        cost = job_credits(params)
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

    async def screen(self, submission: Submission) -> Submission:
        """Before the job's row is written: it records what the job costs (reserved in before_submit)."""
        return dataclasses.replace(submission, params={**submission.params, "credits": job_credits(submission.params)})

    async def before_submit(self, session: AsyncSession, job: Job, submission: Submission) -> None:
        cost = job_credits(job.params)
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

    async def set_quota(self, *, guild_id: int, scope: QuotaScope, target_id: int, credits: int | None) -> None:
        if credits is not None and credits > 1_000_000:
            raise InvalidOption("Allowances are capped at 1,000,000 credits a day; use -1 for unlimited.")
        async with self.sessions.begin() as session:
            await repo.set_quota(session, guild_id=guild_id, scope=scope, target_id=target_id, daily_credits=credits)
        self._forget_snapshots(guild_id=guild_id)
