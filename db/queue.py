"""Claims and fair order: which queued job a worker starts next, and where a queued job stands.

The next job is chosen by start-time fair queueing over guilds, then members: a guild that has been
served least goes first, and inside it the member whose virtual finish tag
(service received + the head job's work) / priority is smallest; ties go to the oldest job. Each
member's own jobs stay in the order they were queued. "Service" is the estimated work of a member's
jobs that ran at any moment since the newest competing head job was queued, so a newcomer is
compared from the moment it started competing (no back-credit, no catch-up burst), and a member
with thirty queued jobs cannot push another member's first job back by more than the jobs already
running. Equal tags go to the member served least recently (round-robin), then to the oldest job.
Nothing is stored: the tags are derived from the job table on each claim.

Fairness between members alone could keep one member's second job waiting while new members keep
arriving as fast as jobs finish; ageing bounds that: a head job that has been next in its member's
line for longer than ``max_wait`` (since it was queued, or since the member's previous job started)
goes first, oldest such first.

Loads cost more than a window of fairness: a GPU that holds two of three models and reloads for
every other job spends much of its time loading. So a claiming device names the models it has
loaded, and among the heads whose fair key (guild service + the member's tag) is within
``MODEL_WINDOW`` work units of the first's, the first (in the fair order) on a loaded model goes
instead. No competing member's key gets more than ``MODEL_WINDOW`` units past a waiting member's
this way (within one guild: its service), and ageing still comes first (it also ends a stream of newcomers on loaded models
keeping a job waiting, as it does for newcomers in the plain fair order). Queue positions shown to
members follow the plain fair order: they cannot know which device will claim next.

Keyword-only functions that take the caller's session and never commit, like db.repositories; the
row lifecycle after a claim (progress, completion, failure, recovery) is db.repositories.jobs.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Job, JobStatus, utcnow
from db.models_access import PausedGuild
from db.repositories.jobs import aware

# Work unit: one 512x512 image, 20 steps, with classifier-free guidance (two UNet passes per step).
_WORK_UNIT = 512 * 512 * 20 * 2
_MIN_PRIORITY, _MAX_PRIORITY = 0.1, 100.0

MAX_WAIT = timedelta(minutes=10)

# The model-aware window in work units (bench/serve.py tunes it: the share of GPU time spent
# generating rose with the window up to this, and wider ones broke its fairness bound).
MODEL_WINDOW = 24.0


def gpu_work(params: dict[str, Any]) -> float:
    """Estimated GPU work of a job in units of one 512x512 20-step CFG image (steps x pixels x count).

    The scheduler's measure of service, not what a member pays (bot.services.accounts.job_cost)."""
    steps = float(params.get("steps") or 20)
    pixels = float(params.get("width") or 512) * float(params.get("height") or 512)
    count = float(params.get("count") or 1)
    passes = 2.0 if float(params.get("guidance") or 0.0) > 1.0 else 1.0
    work = steps * pixels
    hires = float(params.get("hires") or 0.0)
    if hires > 0:
        # Hires fix's second pass: int(steps x hires_strength) steps at hires times each side (as the
        # runner schedules it, inference/runners/hires.py).
        second = max(1.0, math.floor(steps * float(params.get("hires_strength") or 0.4)))
        work += second * pixels * hires * hires
    return max(work * count * passes / _WORK_UNIT, 1e-3)


def job_priority(params: dict[str, Any]) -> float:
    """A tier's share weight from params["priority"] (default 1; 2 gets twice the share of 1)."""
    try:
        value = float(params.get("priority", 1.0))
    except (TypeError, ValueError):
        return 1.0
    return min(max(value, _MIN_PRIORITY), _MAX_PRIORITY) if value == value else 1.0


@dataclass(slots=True)
class Queued:
    """What the fair order needs of a queued job."""

    id: int
    user_id: int
    guild: tuple[str, int]
    work: float
    weight: float
    model: str = ""


def guild_key(guild_id: int | None, user_id: int) -> tuple[str, int]:
    """The guild a job's service counts against: direct messages have no guild, so each member's
    DMs count as a guild of their own."""
    return ("g", guild_id) if guild_id is not None else ("u", user_id)


def fair_order(queued: Sequence[Queued], user_service: dict[int, float], guild_service: dict[tuple[str, int], float],
               last_served: dict[int, float], *, until: int | None = None,
               prefer: Collection[str] = ()) -> list[int]:
    """Job ids in the order the scheduler would start them (stops after ``until`` when given).

    ``prefer``: models already loaded on the claiming device. Among jobs exactly as due (equal tags),
    one on such a model goes first, before the round-robin: the device skips a load, and the other
    member's tag is then the smaller one, so it waits one job at most."""
    per_user: dict[int, deque[Queued]] = {}
    for job in sorted(queued, key=lambda j: j.id):
        per_user.setdefault(job.user_id, deque()).append(job)
    users = dict(user_service)
    guilds = dict(guild_service)
    # (never served, 0) < (served at, timestamp) < (served by this simulation, pick number)
    served: dict[int, tuple[int, float]] = {u: (0, t) for u, t in last_served.items()}
    heaps: dict[tuple[str, int], list[tuple[float, int, tuple[int, float], int, int]]] = {}

    def push(user_id: int) -> None:
        head = per_user[user_id][0]
        tag = (users.get(user_id, 0.0) + head.work) / head.weight
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
        users[user_id] = users.get(user_id, 0.0) + job.work
        guilds[job.guild] = guilds.get(job.guild, 0.0) + job.work
        served[user_id] = (1, float(len(order)))
        if per_user[user_id]:
            push(user_id)
    return order


def next_job(heads: Sequence[Queued], user_service: dict[int, float], guild_service: dict[tuple[str, int], float],
             last_served: dict[int, float], *, prefer: Collection[str] = (), window: float = MODEL_WINDOW) -> int:
    """The head job to start next (one queued job per member, each member's oldest).

    The first in the fair order, unless its model is not among ``prefer`` (loaded on the claiming
    device) and a head on a loaded model has a fair key within ``window`` work units of the first's:
    then the first such head in the fair order. The key is the guild's service plus the member's
    tag, the two sums the fair order compares, so a member served more than another by more than
    ``window`` never goes ahead of it this way."""
    order = fair_order(heads, user_service, guild_service, last_served, prefer=prefer)
    by_id = {h.id: h for h in heads}
    first = by_id[order[0]]
    if not prefer or first.model in prefer or window <= 0:
        return first.id

    def key(job: Queued) -> float:
        return guild_service.get(job.guild, 0.0) + (user_service.get(job.user_id, 0.0) + job.work) / job.weight

    limit = key(first) + window
    return next((i for i in order if by_id[i].model in prefer and key(by_id[i]) <= limit), first.id)


def _queued_row(row: Any) -> Queued:
    params = row.params or {}
    return Queued(row.id, row.user_id, guild_key(row.guild_id, row.user_id), gpu_work(params), job_priority(params),
                  str(params.get("model") or ""))


# The scheduler's statements run on every claim and every submission's queue position: each is
# built once, with bind parameters, rather than rebuilt on the event loop every time.


@functools.cache
def _service_query() -> Any:
    since = bindparam("since", type_=Job.__table__.c.started_at.type)
    return select(Job.user_id, Job.guild_id, Job.params).where(
        Job.status != JobStatus.queued,
        or_(Job.status == JobStatus.running, Job.started_at >= since, Job.finished_at >= since))


async def _service_since(session: AsyncSession, since: datetime) -> tuple[dict[int, float], dict[tuple[str, int], float]]:
    """Estimated work each member and guild received: jobs running now or at any moment since ``since``."""
    users: dict[int, float] = {}
    guilds: dict[tuple[str, int], float] = {}
    rows = await session.execute(_service_query(), {"since": since})
    for row in rows.all():
        work = gpu_work(row.params or {})
        users[row.user_id] = users.get(row.user_id, 0.0) + work
        guild = guild_key(row.guild_id, row.user_id)
        guilds[guild] = guilds.get(guild, 0.0) + work
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


async def _standing(session: AsyncSession, heads: Sequence[Any]) -> tuple[dict[int, float], dict[tuple[str, int], float],
                                                                     dict[int, float]]:
    """(service per member, service per guild, when each member was last served) for competing
    ``heads``: service counts since the newest of them was queued."""
    users, guilds = await _service_since(session, max(h.created_at for h in heads))
    served = await _last_served(session, [h.user_id for h in heads])
    return users, guilds, served


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
def _queued_heads_query(by_command: bool, excluding: bool = False) -> Any:
    conditions = [*_claimable(), _not_paused()]
    if by_command:
        conditions.append(Job.command.in_(bindparam("commands", expanding=True, type_=Job.__table__.c.command.type)))
    if excluding:
        conditions.append(Job.command.not_in(bindparam("excluded", expanding=True, type_=Job.__table__.c.command.type)))
    heads = select(func.min(Job.id)).where(*conditions).group_by(Job.user_id)
    return _queued_columns().where(Job.id.in_(heads))


async def _queued_heads(session: AsyncSession, commands: Sequence[str] | None,
                        excluded: Sequence[str] = ()) -> list[Any]:
    """Each member's oldest claimable job (only heads compete; a member's jobs run in order), among
    ``commands`` when given and never one of ``excluded`` (e.g. training jobs on a device that does not
    train: they wait for one that does, and the member's other jobs are not held up behind them)."""
    query = _queued_heads_query(bool(commands), bool(excluded))
    values: dict[str, Any] = {"commands": list(commands)} if commands else {}
    if excluded:
        values["excluded"] = list(excluded)
    return list((await session.execute(query, values)).all())


async def _serialise_claims(session: AsyncSession) -> None:
    """Make concurrent claims take turns, so each one sees the previous claim's service.

    SQLite already does (every transaction starts with BEGIN IMMEDIATE, see db/engine.py); on
    PostgreSQL a transaction-scoped advisory lock does it (released at commit or rollback)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(7461636)"))  # arbitrary, fixed key


async def claim_next_job(session: AsyncSession, *, worker: str, commands: Sequence[str] | None = None,
                         max_wait: timedelta = MAX_WAIT, prefer: Collection[str] = (),
                         excluded: Sequence[str] = (), window: float = MODEL_WINDOW) -> Job | None:
    """Move the fairest next queued job to running, atomically (the UPDATE is guarded by status).

    The order is the module's (above); with a single member it is plain FIFO.
    ``prefer``: the models loaded on the claiming device; a head on one of them goes first among
    heads within ``window`` work units of the fairest (see next_job; 0: exact ties only)."""
    await _serialise_claims(session)
    for _ in range(5):
        heads = await _queued_heads(session, commands, excluded)
        if not heads:
            return None
        if len(heads) == 1:
            job_id = heads[0].id
        else:
            users, guilds, served = await _standing(session, heads)
            job_id = _aged(heads, served, max_wait) or next_job([_queued_row(h) for h in heads], users, guilds, served,
                                                                prefer=prefer, window=window)
        job = await _start(session, job_id=job_id, worker=worker)
        if job is not None:
            return job
    return None


async def _start(session: AsyncSession, *, job_id: int, worker: str, uncancelled: bool = False) -> Job | None:
    """Move one queued job to running for ``worker`` in one UPDATE ... RETURNING; its row, or None if
    it was no longer queued."""
    query = update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
    if uncancelled:
        query = query.where(Job.cancel_requested.is_(False))
    query = query.values(status=JobStatus.running, started_at=utcnow(), heartbeat_at=utcnow(), worker=worker,
                         attempts=Job.attempts + 1)
    result = await session.execute(query.returning(Job), execution_options={"populate_existing": True})
    return result.scalars().first()


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
    users, guilds, served = await _standing(session, heads)
    by_id = {h.id: h for h in heads}
    claimed: list[Job] = []
    for candidate in fair_order([_queued_row(h) for h in heads], users, guilds, served):
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
    users, guilds, served = await _standing(session, list(heads.values()))
    order = fair_order([_queued_row(r) for r in rows], users, guilds, served, until=job.id)
    return len(order), total
