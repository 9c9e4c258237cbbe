"""Accounts: quotas (bot/services/quotas.py), and what we keep about a member and for how long:
history, the queue, re-runs, export, forget and retention.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import InvalidOption, UnknownJob
from bot.services.hooks import Origin
from bot.services.jobs import JobService, Ticket, check_repeatable, starts_in
from bot.services.quotas import Quotas, day_of
from db import queue as job_queue
from db.models import Job, JobStatus
from db.repositories import accounts as repo
from db.repositories import jobs as jobs_repo
from db.repositories import preferences as prefs_repo
from inference.media import TooLarge, fit_to_limit
from inference.video import GIF, MP4, VideoTooLarge, fit_video, sniff_mime

log = logging.getLogger(__name__)


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


class AccountService(Quotas):
    """Quota policy and the ledger's hooks (Quotas); history, export, forget and retention."""

    def __init__(self, jobs: JobService, *, default_daily: int = 250,
                 roles_of: Callable[[int, int], Iterable[int]] | None = None,
                 default_retention_days: int = 90,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        super().__init__(jobs, default_daily=default_daily, roles_of=roles_of, clock=clock)
        # ATELIER_RETENTION_DAYS: history kept where a guild set nothing (0: forever).
        self.default_retention_days = default_retention_days
        # Called by /forget before the member's rows go: other features' data (bot/client.py wires them).
        self.on_forget: list[Callable[..., Awaitable[Any]]] = []
        # Called by /export: other features' data of the member, as sections of the document
        # (their trained LoRAs); bot/client.py wires them beside on_forget.
        self.on_export: list[Callable[..., Awaitable[dict[str, Any]]]] = []

    # ----- admin -----

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
        check_repeatable(parent)
        if parent.model not in self.jobs.registry.names():
            raise InvalidOption(f"The model {parent.model!r} of job #{job_id} is no longer installed.")
        params = {k: v for k, v in parent.params.items() if k != "credits"}
        return await self.jobs.submit(command=parent.command, params=params, origin=origin, parent_job_id=parent.id)

    # ----- privacy -----

    async def export(self, *, user_id: int) -> bytes:
        """Everything stored about the member, as JSON (images are linked, not embedded): their jobs,
        credit ledger, their /settings defaults, the moderation cases about them and the other
        features' sections (``on_export``: their trained LoRAs). Built off the event loop: a member
        with years of history makes a large document."""
        async with self.sessions() as session:
            jobs = await repo.all_user_jobs(session, user_id=user_id)
            ledger = await repo.ledger_entries(session, user_id=user_id)
            cases = await repo.member_cases(session, user_id=user_id)
            settings = await prefs_repo.member(session, user_id=user_id)
        sections: dict[str, Any] = {}
        for part in self.on_export:
            sections.update(await part(user_id=user_id))
        return await asyncio.to_thread(_export_document, user_id, self.clock(), jobs, ledger, cases, settings,
                                       sections)

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
        for forget in self.on_forget:  # other features' data of the member (their trained LoRAs' files)
            await forget(user_id=user_id)
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


def _export_document(user_id: int, now: datetime, jobs: list[Job], ledger: list[Any], cases: list[Any],
                     settings: dict[str, Any] | None = None, sections: dict[str, Any] | None = None) -> bytes:
    data = {
        "user_id": str(user_id),
        "exported_at": now.isoformat(),
        # /settings: the member's defaults (only those set).
        "settings": {k: v for k, v in (settings or {}).items() if v is not None},
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
        **(sections or {}),
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
