"""Job and output queries. Keyword-only, take the caller's session, never commit on their own."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ACTIVE_STATUSES, Job, JobStatus, Output, utcnow


async def create_job(session: AsyncSession, *, job: Job) -> Job:
    session.add(job)
    await session.flush()
    return job


async def get_job(session: AsyncSession, *, job_id: int) -> Job | None:
    return await session.get(Job, job_id)


async def get_job_by_message(session: AsyncSession, *, message_id: int) -> Job | None:
    result = await session.execute(select(Job).where(Job.message_id == message_id).order_by(Job.id.desc()).limit(1))
    return result.scalars().first()


async def claim_next_job(session: AsyncSession, *, worker: str, commands: Sequence[str] | None = None) -> Job | None:
    """Move the oldest queued job to running, atomically (the UPDATE is guarded by status)."""
    for _ in range(5):
        query = select(Job.id).where(Job.status == JobStatus.queued, Job.cancel_requested.is_(False))
        if commands:
            query = query.where(Job.command.in_(commands))
        job_id = (await session.execute(query.order_by(Job.id).limit(1))).scalar()
        if job_id is None:
            return None
        result = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.queued)
            .values(status=JobStatus.running, started_at=utcnow(), worker=worker, attempts=Job.attempts + 1)
        )
        if result.rowcount == 1:
            job = await session.get(Job, job_id, populate_existing=True)
            return job
    return None


async def queue_position(session: AsyncSession, *, job: Job) -> tuple[int, int]:
    """(1-based position among queued jobs, number of queued jobs)."""
    ahead = await session.scalar(
        select(func.count()).select_from(Job).where(Job.status == JobStatus.queued, Job.id < job.id)
    )
    total = await session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.queued))
    return int(ahead or 0) + 1, int(total or 0)


async def count_active(session: AsyncSession, *, user_id: int | None = None) -> int:
    query = select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE_STATUSES))
    if user_id is not None:
        query = query.where(Job.user_id == user_id)
    return int(await session.scalar(query) or 0)


async def count_running(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Job).where(Job.status == JobStatus.running)) or 0)


async def average_run_seconds(session: AsyncSession, *, model: str, last: int = 20) -> float | None:
    sub = (
        select(Job.run_seconds)
        .where(Job.model == model, Job.status == JobStatus.completed, Job.run_seconds.is_not(None))
        .order_by(Job.id.desc())
        .limit(last)
        .subquery()
    )
    value = await session.scalar(select(func.avg(sub.c.run_seconds)))
    return float(value) if value is not None else None


async def set_progress(session: AsyncSession, *, job_id: int, step: int, total: int) -> None:
    await session.execute(update(Job).where(Job.id == job_id).values(progress_step=step, progress_total=total))


async def set_message(session: AsyncSession, *, job_id: int, message_id: int, channel_id: int | None = None) -> None:
    values: dict[str, Any] = {"message_id": message_id}
    if channel_id is not None:
        values["channel_id"] = channel_id
    await session.execute(update(Job).where(Job.id == job_id).values(**values))


async def complete_job(session: AsyncSession, *, job_id: int, outputs: list[Output], run_seconds: float) -> bool:
    """Store outputs and mark completed; False when the job was no longer running (e.g. canceled)."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(status=JobStatus.completed, finished_at=utcnow(), run_seconds=run_seconds, error=None)
    )
    if result.rowcount != 1:
        return False
    session.add_all(outputs)
    await session.flush()
    return True


async def fail_job(session: AsyncSession, *, job_id: int, error: str) -> bool:
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        .values(status=JobStatus.failed, finished_at=utcnow(), error=error[:2000])
    )
    return result.rowcount == 1


async def cancel_job(session: AsyncSession, *, job_id: int) -> str | None:
    """Cancel a queued job at once, or flag a running one. Returns the status it had, or None."""
    job = await session.get(Job, job_id, populate_existing=True)
    if job is None or job.status not in ACTIVE_STATUSES:
        return None
    previous = job.status
    if job.status == JobStatus.queued:
        await session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
            .values(status=JobStatus.canceled, finished_at=utcnow(), cancel_requested=True)
        )
    else:
        await session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    return previous


async def mark_canceled(session: AsyncSession, *, job_id: int) -> None:
    await session.execute(
        update(Job).where(Job.id == job_id, Job.status.in_(ACTIVE_STATUSES))
        .values(status=JobStatus.canceled, finished_at=utcnow())
    )


async def mark_delivered(session: AsyncSession, *, job_id: int) -> None:
    # The interaction token is useless after delivery; don't keep a credential longer than needed.
    await session.execute(update(Job).where(Job.id == job_id).values(delivered=True, interaction_token=None))


async def set_notice(session: AsyncSession, *, job_id: int, notice: str | None) -> None:
    await session.execute(update(Job).where(Job.id == job_id).values(notice=notice))


async def recover_interrupted(session: AsyncSession, *, max_attempts: int = 2) -> tuple[list[int], list[int]]:
    """After a crash: re-queue running jobs once; fail those that already died before.

    Returns (requeued ids, failed ids)."""
    running = (await session.execute(select(Job).where(Job.status == JobStatus.running))).scalars().all()
    requeued, failed = [], []
    for job in running:
        if job.attempts >= max_attempts:
            job.status = JobStatus.failed
            job.finished_at = utcnow()
            job.error = "The worker stopped twice while running this job."
            failed.append(job.id)
        else:
            job.status = JobStatus.queued
            job.worker = None
            job.progress_step = 0
            requeued.append(job.id)
    await session.flush()
    return requeued, failed


async def undelivered(session: AsyncSession) -> list[Job]:
    """Finished jobs whose result (or failure notice) never reached Discord."""
    result = await session.execute(
        select(Job)
        .where(Job.delivered.is_(False), Job.status.in_((JobStatus.completed, JobStatus.failed)))
        .order_by(Job.id)
    )
    return list(result.scalars().all())


async def get_outputs(session: AsyncSession, *, job_id: int) -> list[Output]:
    result = await session.execute(select(Output).where(Output.job_id == job_id).order_by(Output.index))
    return list(result.scalars().all())


async def list_jobs(session: AsyncSession, *, user_id: int | None = None, status: str | None = None,
                    since: datetime | None = None, limit: int = 50) -> list[Job]:
    query = select(Job)
    if user_id is not None:
        query = query.where(Job.user_id == user_id)
    if status is not None:
        query = query.where(Job.status == status)
    if since is not None:
        query = query.where(Job.created_at >= since)
    result = await session.execute(query.order_by(Job.id.desc()).limit(limit))
    return list(result.scalars().all())


async def delete_user_jobs(session: AsyncSession, *, user_id: int) -> int:
    ids = select(Job.id).where(Job.user_id == user_id)
    await session.execute(delete(Output).where(Output.job_id.in_(ids)))
    result = await session.execute(delete(Job).where(Job.user_id == user_id))
    return result.rowcount or 0
