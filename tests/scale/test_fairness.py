"""Fair scheduling in claim_next_job and queue_position, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from db import queue as job_queue
from db.models import Job, JobStatus
from db.repositories import jobs as jobs_repo
from db.repositories import users as users_repo

GUILD = 10**18


async def _add(sessions, user_id: int, n: int = 1, *, guild_id: int | None = GUILD, **params: Any) -> list[int]:  # type: ignore[no-untyped-def]
    base = {"model": "m", "prompt": "p", "seed": 1, "steps": 20, "width": 512, "height": 512, "guidance": 7.0}
    ids = []
    async with sessions.begin() as s:
        await users_repo.ensure_user(s, user_id=user_id, name=f"u{user_id}")
        for _ in range(n):
            job = Job(command="imagine", user_id=user_id, guild_id=guild_id, model="m", prompt="p", seed=1,
                      params={**base, **params})
            ids.append((await jobs_repo.create_job(s, job=job)).id)
    return ids


async def _run_next(sessions) -> Job | None:  # type: ignore[no-untyped-def]
    """One worker: claim the next job and finish it at once."""
    async with sessions.begin() as s:
        job = await job_queue.claim_next_job(s, worker="main/cpu#0")
        if job is not None:
            await jobs_repo.complete_job(s, job_id=job.id, outputs=[], run_seconds=1.0)
    return job


async def _drain(sessions, n: int | None = None) -> list[Job]:  # type: ignore[no-untyped-def]
    done = []
    while n is None or len(done) < n:
        job = await _run_next(sessions)
        if job is None:
            break
        done.append(job)
    return done


async def test_light_members_overtake_a_heavy_backlog(sessions) -> None:  # type: ignore[no-untyped-def]
    heavy = await _add(sessions, 1, 30)
    first = await _drain(sessions, 3)
    assert [j.id for j in first] == heavy[:3]  # alone in the queue: plain FIFO
    for user in (2, 3, 4, 5):
        async with sessions.begin() as s:  # the heavy member's next job is running...
            running = await job_queue.claim_next_job(s, worker="main/cpu#0")
        (job_id,) = await _add(sessions, user)  # ...when a light member asks
        async with sessions() as s:
            queued = await jobs_repo.get_job(s, job_id=job_id)
            assert await job_queue.queue_position(s, job=queued) == (1, 27 - 2 * (user - 2))
        async with sessions.begin() as s:
            await jobs_repo.complete_job(s, job_id=running.id, outputs=[], run_seconds=1.0)
        assert (await _run_next(sessions)).id == job_id  # the very next job, whatever the backlog
        await _drain(sessions, 1)
    rest = await _drain(sessions)
    assert all(j.user_id == 1 for j in rest) and len(rest) == 30 - 3 - 8


async def test_simultaneous_light_jobs_wait_only_for_each_other(sessions) -> None:  # type: ignore[no-untyped-def]
    heavy = await _add(sessions, 1, 30)
    light = [(await _add(sessions, u))[0] for u in (2, 3, 4, 5)]
    order = [j.id for j in await _drain(sessions)]
    # The heavy member's oldest job goes first (it is the oldest in the queue), then every light job.
    assert order[:5] == [heavy[0], *light]
    assert order[5:] == heavy[1:]


async def test_two_heavy_members_alternate_and_a_late_one_gets_no_back_credit(sessions) -> None:  # type: ignore[no-untyped-def]
    a = await _add(sessions, 1, 10)
    b = await _add(sessions, 2, 10)
    order = [j.user_id for j in await _drain(sessions, 8)]
    assert Counter(order) == {1: 4, 2: 4} and all(order[i] != order[i + 1] for i in range(7))
    await _add(sessions, 3, 10)  # arrives after 1 and 2 were served 4 times each
    order = [j.user_id for j in await _drain(sessions, 9)]
    assert Counter(order) == {1: 3, 2: 3, 3: 3}, order  # a fair third, not a catch-up burst
    assert a and b


async def test_cost_and_priority_set_the_share(sessions) -> None:  # type: ignore[no-untyped-def]
    await _add(sessions, 1, 20)                 # cost 1 each
    await _add(sessions, 2, 20, count=4)        # cost 4 each: a quarter of the jobs for the same work
    await _add(sessions, 3, 20, priority=2.0)   # twice the share of member 1
    got = Counter(j.user_id for j in await _drain(sessions, 28))
    assert got[3] >= 2 * got[1] - 2 and got[1] >= 4 * got[2] - 4, got
    assert got[2] >= 2  # the expensive member is not starved


async def test_guilds_share_before_members(sessions) -> None:  # type: ignore[no-untyped-def]
    for user in (1, 2, 3):
        await _add(sessions, user, 5, guild_id=GUILD)
    await _add(sessions, 4, 5, guild_id=GUILD + 1)
    await _add(sessions, 5, 2, guild_id=None)  # DMs count as a guild of their own
    got = [j for j in await _drain(sessions, 9)]
    by_guild = Counter(j.guild_id for j in got)
    assert by_guild == {GUILD: 3, GUILD + 1: 3, None: 2} or by_guild == {GUILD: 4, GUILD + 1: 3, None: 2}, by_guild


async def test_aging_ends_starvation_under_a_stream_of_newcomers(sessions) -> None:  # type: ignore[no-untyped-def]
    async def stream(first_newcomer: int, **claim: Any) -> list[int]:
        started = []
        for newcomer in range(first_newcomer, first_newcomer + 8):
            await _add(sessions, newcomer)
            await asyncio.sleep(0.03)
            async with sessions.begin() as s:
                job = await job_queue.claim_next_job(s, worker="main/cpu#0", **claim)
                await jobs_repo.complete_job(s, job_id=job.id, outputs=[], run_seconds=1.0)
            started.append(job.user_id)
        return started

    await _add(sessions, 1, 3)
    # Fair shares alone: every newcomer's first job beats member 1's second one, for as long as they come.
    assert (await stream(100)).count(1) == 1
    await _drain(sessions)
    await _add(sessions, 1, 3)
    # With aging, member 1's next job waits at most max_wait for its turn.
    assert (await stream(200, max_wait=timedelta(milliseconds=20))).count(1) == 3


async def test_queue_position_follows_the_fair_order(sessions) -> None:  # type: ignore[no-untyped-def]
    await _add(sessions, 1, 6)
    await _add(sessions, 2, 3, count=2)
    await _add(sessions, 3, 2, guild_id=GUILD + 1)
    await _add(sessions, 4, 2, priority=3.0)
    await _drain(sessions, 2)
    async with sessions() as s:
        queued = (await s.execute(select(Job).where(Job.status == JobStatus.queued))).scalars().all()
        positions = {j.id: await job_queue.queue_position(s, job=j) for j in queued}
    order = [j.id for j in await _drain(sessions)]
    assert [positions[i] for i in order] == [(n + 1, len(order)) for n in range(len(order))]


async def test_concurrent_claims_stay_fair(sessions) -> None:  # type: ignore[no-untyped-def]
    await _add(sessions, 1, 4)
    await _add(sessions, 2, 4)

    async def claim(worker: str) -> int | None:
        async with sessions.begin() as s:
            job = await job_queue.claim_next_job(s, worker=worker)
            return job.user_id if job else None

    got = await asyncio.gather(*(claim(f"main/cuda:{i}#{i}") for i in range(4)))
    assert Counter(got) == {1: 2, 2: 2}


def test_gpu_work_scales_with_steps_pixels_count_and_guidance() -> None:
    base = {"steps": 20, "width": 512, "height": 512, "count": 1, "guidance": 7.0}
    assert job_queue.gpu_work(base) == 1.0
    assert job_queue.gpu_work({**base, "width": 1024, "height": 1024, "count": 4}) == 16.0
    assert job_queue.gpu_work({**base, "guidance": 0.0, "steps": 4}) == 0.1
    assert job_queue.job_priority({"priority": "x"}) == 1.0 and job_queue.job_priority({"priority": 1e9}) == 100.0


async def test_resident_models_break_ties_without_breaking_the_order(sessions) -> None:  # type: ignore[no-untyped-def]
    """Window 0 (exact ties only): of jobs equally due the one whose model the device holds goes
    first; then the other member's, whose tag is now the smaller, so the other member waits one job
    at most. (The default window lets it wait up to MODEL_WINDOW units: tests/scale/test_model_window.py.)"""
    cold = await _add(sessions, 1, 2, model="sdxl")
    warm = await _add(sessions, 2, 2, model="sd15")
    order = []
    for _ in range(4):
        async with sessions.begin() as s:
            job = await job_queue.claim_next_job(s, worker="main/cpu#0", prefer={"sd15"}, window=0)
            await jobs_repo.complete_job(s, job_id=job.id, outputs=[], run_seconds=1.0)
        order.append(job.id)
    assert order == [warm[0], cold[0], warm[1], cold[1]]
    # Without the preference the round-robin (then the oldest job) decides.
    more_cold = await _add(sessions, 3, 1, model="sdxl")
    await _add(sessions, 4, 1, model="sd15")
    async with sessions.begin() as s:
        assert (await job_queue.claim_next_job(s, worker="main/cpu#0")).id == more_cold[0]


async def test_a_resident_model_never_jumps_a_job_that_is_more_due(sessions) -> None:  # type: ignore[no-untyped-def]
    """Window 0: a resident model breaks exact ties only (beyond the window: test_model_window.py)."""
    cheap = await _add(sessions, 1, 1, model="sdxl", steps=10)
    await _add(sessions, 2, 1, model="sd15", steps=40)
    async with sessions.begin() as s:
        assert (await job_queue.claim_next_job(s, worker="main/cpu#0", prefer={"sd15"}, window=0)).id == cheap[0]
