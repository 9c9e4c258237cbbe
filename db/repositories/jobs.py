"""A job's row from submission to delivery: its inputs, progress, result, cancellation and recovery.

Which queued job starts next (claims, fair order) is db.queue. Keyword-only, take the caller's
session, never commit on their own."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ACTIVE_STATUSES, Job, JobInput, JobStatus, Output, utcnow


async def create_job(session: AsyncSession, *, job: Job) -> Job:
    session.add(job)
    await session.flush()
    return job


async def add_inputs(session: AsyncSession, *, job_id: int, inputs: dict[str, bytes]) -> dict[str, int]:
    """Store a job's input images; {field name: input id} for its params."""
    rows = [JobInput(job_id=job_id, name=name, data=data) for name, data in inputs.items()]
    session.add_all(rows)
    await session.flush()
    return {row.name: row.id for row in rows}  # type: ignore[misc]


async def copy_inputs(session: AsyncSession, *, job_id: int, refs: dict[str, int]) -> dict[str, int]:
    """Give job ``job_id`` its own copies of the inputs ``refs`` names (a rerun of another job):
    each job owns its inputs, so deleting one job never takes another's. Copied inside the
    database; the bytes never come to the bot."""
    columns = ["job_id", "name", "data", "created_at"]
    for input_id in refs.values():
        source = select(literal(job_id, BigInteger), JobInput.name, JobInput.data, JobInput.created_at).where(
            JobInput.id == input_id)
        await session.execute(insert(JobInput).from_select(columns, source))
    rows = await session.execute(select(JobInput.name, JobInput.id).where(JobInput.job_id == job_id))
    return {name: int(input_id) for name, input_id in rows.all()}


async def get_inputs(session: AsyncSession, *, job_id: int) -> dict[str, bytes]:
    """A job's input images by field name (init_image, control_image)."""
    rows = await session.execute(select(JobInput.name, JobInput.data).where(JobInput.job_id == job_id))
    return {name: bytes(data) for name, data in rows.all()}


async def get_job(session: AsyncSession, *, job_id: int) -> Job | None:
    return await session.get(Job, job_id)


async def get_job_by_message(session: AsyncSession, *, message_id: int) -> Job | None:
    result = await session.execute(select(Job).where(Job.message_id == message_id).order_by(Job.id.desc()).limit(1))
    return result.scalars().first()


def aware(value: datetime) -> datetime:
    """A stored time, timezone-aware: SQLite hands back naive datetimes; every stored time is UTC
    (db.models.utcnow)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def active_counts(session: AsyncSession, *, user_id: int) -> tuple[int, int]:
    """(the member's queued or running jobs, everyone's), in one query."""
    row = (await session.execute(_active_counts_query(), {"member": user_id})).one()
    return int(row[0]), int(row[1])


@functools.cache
def _active_counts_query() -> Any:
    member = bindparam("member", type_=Job.__table__.c.user_id.type)
    mine = func.coalesce(func.sum(case((Job.user_id == member, 1), else_=0)), 0)
    return select(mine, func.count()).select_from(Job).where(Job.status.in_(ACTIVE_STATUSES))


async def queued_by_model(session: AsyncSession) -> dict[str, int]:
    """How many jobs wait for each model (one grouped count, no rows loaded)."""
    query = select(Job.model, func.count()).where(Job.status == JobStatus.queued).group_by(Job.model)
    return {model: int(count) for model, count in (await session.execute(query)).all()}


RUNS_AVERAGED = 20  # a model's latest completed runs that its time per job is averaged over


@functools.cache
def _run_times_query() -> Any:
    latest = (
        select(Job.run_seconds)
        .where(Job.model == bindparam("model", type_=Job.__table__.c.model.type), Job.status == JobStatus.completed,
               Job.run_seconds.is_not(None))
        .order_by(Job.id.desc())
        .limit(RUNS_AVERAGED)
        .subquery()
    )
    average = select(func.avg(latest.c.run_seconds)).scalar_subquery()
    running = select(func.count()).select_from(Job).where(Job.status == JobStatus.running).scalar_subquery()
    return select(average, running)


async def run_times(session: AsyncSession, *, model: str) -> tuple[float | None, int]:
    """(mean run time of the model's latest completed jobs or None before its first, jobs running
    now) in one statement: what a start estimate needs (bot.services.jobs.starts_in). Built once: every
    submission asks."""
    average, running = (await session.execute(_run_times_query(), {"model": model})).one()
    return (float(average) if average is not None else None), int(running or 0)


async def set_progress(session: AsyncSession, *, job_id: int, step: int, total: int) -> None:
    await session.execute(update(Job).where(Job.id == job_id).values(progress_step=step, progress_total=total))


async def set_message(session: AsyncSession, *, job_id: int, message_id: int, channel_id: int | None = None) -> None:
    values: dict[str, Any] = {"message_id": message_id}
    if channel_id is not None:
        values["channel_id"] = channel_id
    await session.execute(update(Job).where(Job.id == job_id).values(**values))


async def complete_job(session: AsyncSession, *, job_id: int, outputs: list[Output],
                       run_seconds: float) -> Job | None:
    """Store outputs and mark completed; the job's row as completed (what its delivery needs), or
    None when the job was no longer running (e.g. canceled)."""
    query = (update(Job).where(Job.id == job_id, Job.status == JobStatus.running)
             .values(status=JobStatus.completed, finished_at=utcnow(), run_seconds=run_seconds, error=None))
    result = await session.execute(query.returning(Job), execution_options={"populate_existing": True})
    job = result.scalars().first()
    if job is None:
        return None
    session.add_all(outputs)
    await session.flush()
    return job


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


async def recover_interrupted(session: AsyncSession, *, max_attempts: int = 2,
                              alive: Callable[[Job], bool] | None = None) -> tuple[list[int], list[int]]:
    """After a crash: re-queue running jobs once; fail those that already died before.

    ``alive(job)`` true leaves a running job alone (another process still runs it; see
    bot.services.jobs.JobService.recover). Returns (requeued ids, failed ids)."""
    running = (await session.execute(select(Job).where(Job.status == JobStatus.running))).scalars().all()
    requeued, failed = [], []
    for job in running:
        if alive is not None and alive(job):
            continue
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


async def heartbeat(session: AsyncSession, *, owner: str) -> int:
    """Mark the running jobs of process ``owner`` (workers named ``owner/...``) as alive now."""
    result = await session.execute(
        update(Job).where(Job.status == JobStatus.running, Job.worker.startswith(f"{owner}/", autoescape=True))
        .values(heartbeat_at=utcnow()))
    return int(result.rowcount or 0)


def last_sign_of_life(job: Job) -> datetime:
    """When the process running ``job`` last said so (its claim, when no heartbeat came since)."""
    when = job.heartbeat_at or job.started_at or job.created_at
    return aware(when)


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
