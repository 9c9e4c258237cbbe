"""Job and output queries. Keyword-only, take the caller's session, never commit on their own."""

from __future__ import annotations

import functools
import heapq
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, delete, func, insert, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ACTIVE_STATUSES, Job, JobInput, JobStatus, Output, utcnow
from db.models_access import PausedGuild


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


# ----- fair scheduling -----
#
# The next job is chosen by start-time fair queueing over guilds, then members: a guild that has been
# served least goes first, and inside it the member whose virtual finish tag
# (service received + the head job's cost) / priority is smallest; ties go to the oldest job. Each
# member's own jobs stay in the order they were queued. "Service" is the estimated cost of a
# member's jobs that ran at any moment since the newest competing head job was queued, so a
# newcomer is compared from the moment it started competing (no back-credit, no catch-up burst),
# and a member with 30 queued jobs cannot push another member's first job back by more than the
# jobs already running. Equal tags go to the member served least recently (round-robin), then to
# the oldest job. Nothing is stored: the tags are derived from the job table on each claim.
#
# Fairness between members alone could keep one member's second job waiting while new members keep
# arriving as fast as jobs finish; aging bounds that: a head job that has been next in its
# member's line for longer than ``max_wait`` (since it was queued, or since the member's previous
# job started) goes first, oldest such first.

# Cost unit: one 512x512 image, 20 steps, with classifier-free guidance (two UNet passes per step).
_COST_UNIT = 512 * 512 * 20 * 2
_MIN_PRIORITY, _MAX_PRIORITY = 0.1, 100.0


def job_cost(params: dict[str, Any]) -> float:
    """Estimated GPU work of a job in units of one 512x512 20-step CFG image (steps x pixels x count)."""
    steps = float(params.get("steps") or 20)
    pixels = float(params.get("width") or 512) * float(params.get("height") or 512)
    count = float(params.get("count") or 1)
    passes = 2.0 if float(params.get("guidance") or 0.0) > 1.0 else 1.0
    return max(steps * pixels * count * passes / _COST_UNIT, 1e-3)


def job_priority(params: dict[str, Any]) -> float:
    """A tier's share weight from params["priority"] (default 1; 2 gets twice the share of 1)."""
    try:
        value = float(params.get("priority", 1.0))
    except (TypeError, ValueError):
        return 1.0
    return min(max(value, _MIN_PRIORITY), _MAX_PRIORITY) if value == value else 1.0


@dataclass(slots=True)
class _Queued:
    id: int
    user_id: int
    guild: tuple[str, int]
    cost: float
    weight: float
    model: str = ""


def _guild_key(guild_id: int | None, user_id: int) -> tuple[str, int]:
    # Direct messages have no guild: each member's DMs count as a guild of their own.
    return ("g", guild_id) if guild_id is not None else ("u", user_id)


def _fair_order(queued: Sequence[_Queued], user_service: dict[int, float], guild_service: dict[tuple[str, int], float],
                last_served: dict[int, float], *, until: int | None = None,
                prefer: Collection[str] = ()) -> list[int]:
    """Job ids in the order the scheduler would start them (stops after ``until`` when given).

    ``prefer``: models already loaded on the claiming device. Among jobs exactly as due (equal tags),
    one on such a model goes first, before the round-robin: the device skips a load, and the other
    member's tag is then the smaller one, so it waits one job at most."""
    per_user: dict[int, deque[_Queued]] = {}
    for job in sorted(queued, key=lambda j: j.id):
        per_user.setdefault(job.user_id, deque()).append(job)
    users = dict(user_service)
    guilds = dict(guild_service)
    # (never served, 0) < (served at, timestamp) < (served by this simulation, pick number)
    served: dict[int, tuple[int, float]] = {u: (0, t) for u, t in last_served.items()}
    heaps: dict[tuple[str, int], list[tuple[float, int, tuple[int, float], int, int]]] = {}

    def push(user_id: int) -> None:
        head = per_user[user_id][0]
        tag = (users.get(user_id, 0.0) + head.cost) / head.weight
        cold = 0 if not prefer or head.model in prefer else 1
        heapq.heappush(heaps.setdefault(head.guild, []),
                       (tag, cold, served.get(user_id, (-1, 0.0)), head.id, user_id))

    for user_id in per_user:
        push(user_id)
    order: list[int] = []
    while heaps:
        guild = min(heaps, key=lambda g: (guilds.get(g, 0.0), heaps[g][0][:4]))
        _, _, _, job_id, user_id = heapq.heappop(heaps[guild])
        if not heaps[guild]:
            del heaps[guild]
        job = per_user[user_id].popleft()
        order.append(job_id)
        if job_id == until:
            break
        users[user_id] = users.get(user_id, 0.0) + job.cost
        guilds[job.guild] = guilds.get(job.guild, 0.0) + job.cost
        served[user_id] = (1, float(len(order)))
        if per_user[user_id]:
            push(user_id)
    return order


def _queued_row(row: Any) -> _Queued:
    params = row.params or {}
    return _Queued(row.id, row.user_id, _guild_key(row.guild_id, row.user_id), job_cost(params), job_priority(params),
                   str(params.get("model") or ""))


# The scheduler's statements run on every claim and every submission's queue position: each is
# built once, with bind parameters (building one took 0.1-0.3 ms of the event loop every time).


@functools.cache
def _service_query(bounded: bool) -> Any:
    query = select(Job.user_id, Job.guild_id, Job.params).where(Job.status != JobStatus.queued)
    if not bounded:
        return query.where(Job.status == JobStatus.running)
    since = bindparam("since", type_=Job.__table__.c.started_at.type)
    return query.where(or_(Job.status == JobStatus.running, Job.started_at >= since, Job.finished_at >= since))


async def _service_since(session: AsyncSession, since: datetime | None) -> tuple[dict[int, float], dict[tuple[str, int], float]]:
    """Estimated work each member and guild received: jobs running now or at any moment since ``since``."""
    users: dict[int, float] = {}
    guilds: dict[tuple[str, int], float] = {}
    rows = await session.execute(_service_query(since is not None), {} if since is None else {"since": since})
    for row in rows.all():
        cost = job_cost(row.params or {})
        users[row.user_id] = users.get(row.user_id, 0.0) + cost
        guild = _guild_key(row.guild_id, row.user_id)
        guilds[guild] = guilds.get(guild, 0.0) + cost
    return users, guilds


@functools.cache
def _last_served_query() -> Any:
    members = bindparam("members", expanding=True, type_=Job.__table__.c.user_id.type)
    return (select(Job.user_id, func.max(Job.started_at)).where(Job.user_id.in_(members), Job.started_at.is_not(None))
            .group_by(Job.user_id))


async def _last_served(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, float]:
    """When each member's latest job started (members never served are absent)."""
    rows = await session.execute(_last_served_query(), {"members": list(user_ids)})
    return {user_id: aware(started).timestamp() for user_id, started in rows.all()}


def aware(value: datetime) -> datetime:
    """A stored time, timezone-aware: SQLite hands back naive datetimes; every stored time is UTC
    (db.models.utcnow)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)




def _aged(heads: Sequence[Any], last_served: dict[int, float], max_wait: timedelta) -> int | None:
    """The head job that has waited its turn longest, if that is longer than ``max_wait``."""
    limit = (utcnow() - max_wait).timestamp()
    waiting = [(max(aware(h.created_at).timestamp(), last_served.get(h.user_id, 0.0)), h.id) for h in heads]
    oldest = min(waiting)
    return oldest[1] if oldest[0] < limit else None


def _claimable() -> list[Any]:
    """Queued and not being canceled."""
    return [Job.status == JobStatus.queued, Job.cancel_requested.is_(False)]


def _queued_columns() -> Any:
    """What the scheduler reads of a queued job (see _queued_row)."""
    return select(Job.id, Job.user_id, Job.guild_id, Job.params, Job.created_at)


def _not_paused() -> Any:
    """The job's server has not paused its queue (/admin pause); jobs from DMs are never paused."""
    return or_(Job.guild_id.is_(None), Job.guild_id.not_in(select(PausedGuild.guild_id)))


@functools.cache
def _queued_heads_query(by_command: bool) -> Any:
    conditions = [*_claimable(), _not_paused()]
    if by_command:
        conditions.append(Job.command.in_(bindparam("commands", expanding=True, type_=Job.__table__.c.command.type)))
    heads = select(func.min(Job.id)).where(*conditions).group_by(Job.user_id)
    return _queued_columns().where(Job.id.in_(heads))


async def _queued_heads(session: AsyncSession, commands: Sequence[str] | None) -> list[Any]:
    """Each member's oldest claimable job (only heads compete; a member's jobs run in order)."""
    query = _queued_heads_query(bool(commands))
    return list((await session.execute(query, {"commands": list(commands)} if commands else {})).all())


async def _serialise_claims(session: AsyncSession) -> None:
    """Make concurrent claims take turns, so each one sees the previous claim's service.

    SQLite already does (every transaction starts with BEGIN IMMEDIATE, see db/engine.py); on
    PostgreSQL a transaction-scoped advisory lock does it (released at commit or rollback)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(7461636)"))  # arbitrary, fixed key


MAX_WAIT = timedelta(minutes=10)


async def claim_next_job(session: AsyncSession, *, worker: str, commands: Sequence[str] | None = None,
                         max_wait: timedelta = MAX_WAIT, prefer: Collection[str] = ()) -> Job | None:
    """Move the fairest next queued job to running, atomically (the UPDATE is guarded by status).

    See the comment above ``job_cost`` for the order; with a single member it is plain FIFO.
    ``prefer``: the models loaded on the claiming device, which break exact ties (see _fair_order)."""
    await _serialise_claims(session)
    for _ in range(5):
        heads = await _queued_heads(session, commands)
        if not heads:
            return None
        if len(heads) == 1:
            job_id = heads[0].id
        else:
            since = max(h.created_at for h in heads)
            users, guilds = await _service_since(session, since)
            served = await _last_served(session, [h.user_id for h in heads])
            job_id = _aged(heads, served, max_wait) or _fair_order([_queued_row(h) for h in heads], users, guilds, served,
                                                                   prefer=prefer)[0]
        job = await _start(session, job_id=job_id, worker=worker)
        if job is not None:
            return job
    return None


async def _start(session: AsyncSession, *, job_id: int, worker: str, uncancelled: bool = False) -> Job | None:
    """Move one queued job to running for ``worker``; its row, or None if it was no longer queued."""
    query = update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
    if uncancelled:
        query = query.where(Job.cancel_requested.is_(False))
    return await _updated_job(session, job_id, query.values(
        status=JobStatus.running, started_at=utcnow(), heartbeat_at=utcnow(), worker=worker,
        attempts=Job.attempts + 1))


async def _updated_job(session: AsyncSession, job_id: int, query: Any) -> Job | None:
    """Run ``query``, a guarded UPDATE of job ``job_id``; the row after it, or None if it matched
    nothing. One UPDATE ... RETURNING where the database has it (SQLite 3.35+, PostgreSQL), else
    UPDATE then a load."""
    if session.bind.dialect.update_returning:
        result = await session.execute(query.returning(Job), execution_options={"populate_existing": True})
        return result.scalars().first()
    if (await session.execute(query)).rowcount != 1:
        return None
    return await session.get(Job, job_id, populate_existing=True)


async def claim_partners(session: AsyncSession, *, worker: str, job_id: int, user_id: int,
                         compatible: Callable[[dict[str, Any]], bool], room: int) -> list[Job]:
    """Claim other members' next jobs that can share job ``job_id``'s pipeline call.

    Only heads compete (each member's oldest queued job, as for claim_next_job), never the same
    member's, so a member with thirty jobs cannot ride along thirty times; candidates are taken in
    the fair order while their images (``count``) fit in ``room``."""
    await _serialise_claims(session)
    heads = [h for h in await _queued_heads(session, None)
             if h.user_id != user_id and h.id != job_id and compatible(h.params or {})]
    if not heads:
        return []
    since = max(h.created_at for h in heads)
    users, guilds = await _service_since(session, since)
    served = await _last_served(session, [h.user_id for h in heads])
    by_id = {h.id: h for h in heads}
    claimed: list[Job] = []
    for candidate in _fair_order([_queued_row(h) for h in heads], users, guilds, served):
        count = int((by_id[candidate].params or {}).get("count", 1))
        if count > room:
            continue
        job = await _start(session, job_id=candidate, worker=worker, uncancelled=True)
        if job is not None:
            claimed.append(job)
            room -= count
        if room < 1:
            break
    return claimed


@functools.cache
def _queued_query() -> Any:
    return _queued_columns().where(*_claimable()).order_by(Job.id)


async def queue_position(session: AsyncSession, *, job: Job) -> tuple[int, int]:
    """(1-based position in the order the scheduler will start queued jobs, number of queued jobs)."""
    rows = (await session.execute(_queued_query())).all()
    total = len(rows)  # jobs a cancel is taking out of the queue are not counted
    if not any(r.id == job.id for r in rows):
        return total + 1, total
    heads: dict[int, Any] = {}
    for row in rows:
        heads.setdefault(row.user_id, row)
    since = max(h.created_at for h in heads.values())
    users, guilds = await _service_since(session, since)
    served = await _last_served(session, list(heads))
    order = _fair_order([_queued_row(r) for r in rows], users, guilds, served, until=job.id)
    return len(order), total


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
    job = await _updated_job(session, job_id, update(Job).where(Job.id == job_id, Job.status == JobStatus.running)
                             .values(status=JobStatus.completed, finished_at=utcnow(), run_seconds=run_seconds,
                                     error=None))
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


async def release_claims(session: AsyncSession, *, job_ids: Sequence[int], worker: str) -> list[int]:
    """Put jobs ``worker`` claimed but never started back in the queue as if never claimed (a worker
    that claimed ahead and then was paused or stopped). Returns the ids released."""
    released = []
    for job_id in job_ids:
        result = await session.execute(
            update(Job).where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker)
            .values(status=JobStatus.queued, worker=None, started_at=None, heartbeat_at=None, progress_step=0,
                    attempts=Job.attempts - 1))
        if result.rowcount == 1:
            released.append(job_id)
    return released


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
