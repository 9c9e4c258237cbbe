"""Job repository behaviour on SQLite and PostgreSQL: claiming, positions, recovery, deletion."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, update

from bot.metrics import Metrics
from db import queue as job_queue
from db.models import Job, JobStatus, Output
from db.repositories import accounts as accounts_repo
from db.repositories import jobs as jobs_repo
from db.repositories import users as users_repo
from tests.db.conftest import statements_sent

BIG_ID = 1_234_567_890_123_456_789  # snowflakes exceed 32 bits


def _job(user_id: int = BIG_ID, **kw) -> Job:  # type: ignore[no-untyped-def]
    params = {"model": "m", "prompt": "a cat", "seed": 1, "steps": 4, "width": 64, "height": 64}
    return Job(command="imagine", user_id=user_id, model="m", prompt="a cat", seed=2**32 - 1, params=params,
               channel_id=BIG_ID, guild_id=BIG_ID, **kw)


async def _add(sessions, n: int = 1, **kw) -> list[int]:  # type: ignore[no-untyped-def]
    ids = []
    async with sessions.begin() as s:
        await users_repo.ensure_user(s, user_id=kw.get("user_id", BIG_ID), name="someone")
        for _ in range(n):
            ids.append((await jobs_repo.create_job(s, job=_job(**kw))).id)
    return ids


async def test_migrations_create_every_table(db_engine) -> None:  # type: ignore[no-untyped-def]
    async with db_engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"users", "jobs", "outputs", "guild_settings", "meta", "alembic_version"} <= names


async def test_claim_takes_oldest_and_positions_follow(sessions) -> None:  # type: ignore[no-untyped-def]
    ids = await _add(sessions, 3)
    async with sessions.begin() as s:
        job = await jobs_repo.get_job(s, job_id=ids[2])
        assert await job_queue.queue_position(s, job=job) == (3, 3)
        claimed = await job_queue.claim_next_job(s, worker="main/cpu#0")
    assert claimed.id == ids[0] and claimed.status == JobStatus.running and claimed.attempts == 1
    async with sessions() as s:
        job = await jobs_repo.get_job(s, job_id=ids[2])
        assert await job_queue.queue_position(s, job=job) == (2, 2)
        assert job.user_id == BIG_ID and job.seed == 2**32 - 1


async def test_run_times_average_the_models_latest_runs_and_count_running_in_one_statement(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        assert await jobs_repo.run_times(s, model="m") == (None, 0)  # no run yet: no estimate
    ids = await _add(sessions, 25 + 3)
    async with sessions.begin() as s:
        other = _job()
        other.model, other.status, other.run_seconds = "big", JobStatus.completed, 999.0
        await jobs_repo.create_job(s, job=other)
        # jobs 1-25 completed in 1..25 s (only the latest 20 count: 6..25, mean 15.5); 26 failed; 27-28 run
        for n, job_id in enumerate(ids[:25], start=1):
            await s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.completed, run_seconds=n))
        await s.execute(update(Job).where(Job.id == ids[25]).values(status=JobStatus.failed, run_seconds=500.0))
        await s.execute(update(Job).where(Job.id.in_(ids[26:])).values(status=JobStatus.running))
    with statements_sent(sessions) as statements:
        async with sessions() as s:
            assert await jobs_repo.run_times(s, model="m") == (pytest.approx(15.5), 2)
            assert await jobs_repo.run_times(s, model="big") == (pytest.approx(999.0), 2)
    assert len(statements) == 2


async def test_queue_depth_per_model_counts_only_queued_jobs(sessions) -> None:  # type: ignore[no-untyped-def]
    await _add(sessions, 3)
    async with sessions.begin() as s:
        other = _job()
        other.model, other.params = "big", {**other.params, "model": "big"}
        await jobs_repo.create_job(s, job=other)
        await job_queue.claim_next_job(s, worker="main/cpu#0")  # one of the three "m" jobs runs now
    async with sessions() as s:
        assert await jobs_repo.queued_by_model(s) == {"m": 2, "big": 1}
    metrics = Metrics()
    await metrics.refresh_queue(sessions)
    text = metrics.render().decode()
    assert 'atelier_queue_depth{model="m"} 2.0' in text and 'atelier_queue_depth{model="big"} 1.0' in text
    async with sessions.begin() as s:
        while await job_queue.claim_next_job(s, worker="main/cpu#0") is not None:
            pass
    await metrics.refresh_queue(sessions)
    assert 'atelier_queue_depth{model="m"} 0.0' in metrics.render().decode()


async def test_active_counts_are_the_members_and_everyones(sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as s:
        assert await jobs_repo.active_counts(s, user_id=BIG_ID) == (0, 0)
    await _add(sessions, 2)
    await _add(sessions, 3, user_id=7)
    async with sessions.begin() as s:
        await job_queue.claim_next_job(s, worker="main/cpu#0")  # running still counts
        done = await job_queue.claim_next_job(s, worker="main/cpu#0")
        await jobs_repo.complete_job(s, job_id=done.id, outputs=[], run_seconds=1.0)  # finished does not
    async with sessions() as s:
        mine, everyone = await jobs_repo.active_counts(s, user_id=BIG_ID)
        theirs, _ = await jobs_repo.active_counts(s, user_id=7)
    assert everyone == 4 and mine + theirs == 4 and mine in (1, 2)


async def test_concurrent_claims_never_share_a_job(sessions) -> None:  # type: ignore[no-untyped-def]
    await _add(sessions, 6)

    async def claim(worker: str) -> int | None:
        async with sessions.begin() as s:
            job = await job_queue.claim_next_job(s, worker=worker)
            return job.id if job else None

    got = await asyncio.gather(*(claim(f"main/cuda:{i}#{i}") for i in range(8)))
    taken = [g for g in got if g is not None]
    assert len(taken) == 6 and len(set(taken)) == 6


async def test_complete_stores_outputs_once(sessions) -> None:  # type: ignore[no-untyped-def]
    (job_id,) = await _add(sessions)
    async with sessions.begin() as s:
        await job_queue.claim_next_job(s, worker="main/cpu#0")
    out = Output(job_id=job_id, index=0, seed=1, width=64, height=64, data=b"\x89PNG")
    async with sessions.begin() as s:
        assert await jobs_repo.complete_job(s, job_id=job_id, outputs=[out], run_seconds=0.5)
    async with sessions.begin() as s:  # a second completion (e.g. a duplicate worker) is refused
        dup = Output(job_id=job_id, index=0, seed=1, width=64, height=64, data=b"x")
        assert not await jobs_repo.complete_job(s, job_id=job_id, outputs=[dup], run_seconds=0.5)
    async with sessions() as s:
        outputs = await jobs_repo.get_outputs(s, job_id=job_id)
        assert [o.data for o in outputs] == [b"\x89PNG"]
        assert [j.id for j in await jobs_repo.undelivered(s)] == [job_id]


async def test_cancel_queued_is_immediate_and_running_is_flagged(sessions) -> None:  # type: ignore[no-untyped-def]
    first, second = await _add(sessions, 2)
    async with sessions.begin() as s:
        await job_queue.claim_next_job(s, worker="main/cpu#0")
        assert await jobs_repo.cancel_job(s, job_id=second) == JobStatus.queued
        assert await jobs_repo.cancel_job(s, job_id=first) == JobStatus.running
    async with sessions() as s:
        assert (await jobs_repo.get_job(s, job_id=second)).status == JobStatus.canceled
        running = await jobs_repo.get_job(s, job_id=first)
        assert running.status == JobStatus.running and running.cancel_requested
        assert await jobs_repo.cancel_job(s, job_id=second) is None


async def test_recovery_requeues_once_then_fails(sessions) -> None:  # type: ignore[no-untyped-def]
    (job_id,) = await _add(sessions)
    async with sessions.begin() as s:
        await job_queue.claim_next_job(s, worker="main/cpu#0")
    async with sessions.begin() as s:
        assert await jobs_repo.recover_interrupted(s) == ([job_id], [])
    async with sessions.begin() as s:
        await job_queue.claim_next_job(s, worker="main/cpu#0")  # second attempt dies too
    async with sessions.begin() as s:
        assert await jobs_repo.recover_interrupted(s) == ([], [job_id])
    async with sessions() as s:
        job = await jobs_repo.get_job(s, job_id=job_id)
        assert job.status == JobStatus.failed and "twice" in job.error


async def test_find_by_message_and_meta(sessions) -> None:  # type: ignore[no-untyped-def]
    (job_id,) = await _add(sessions)
    async with sessions.begin() as s:
        await jobs_repo.set_message(s, job_id=job_id, message_id=BIG_ID + 5)
        await users_repo.set_meta(s, key="command_hash:global", value="abc")
        await users_repo.set_meta(s, key="command_hash:global", value="def")
    async with sessions() as s:
        assert (await jobs_repo.get_job_by_message(s, message_id=BIG_ID + 5)).id == job_id
        assert await users_repo.get_meta(s, key="command_hash:global") == "def"


async def test_forgetting_a_member_removes_their_jobs_and_outputs(sessions) -> None:  # type: ignore[no-untyped-def]
    (job_id,) = await _add(sessions)
    async with sessions.begin() as s:
        s.add(Output(job_id=job_id, index=0, seed=1, width=1, height=1, data=b"x"))
    async with sessions.begin() as s:
        deleted = await accounts_repo.forget_user(s, user_id=BIG_ID, today="2026-01-01")
    assert deleted["jobs"] == 1 and deleted["outputs"] == 1
    async with sessions() as s:
        assert await jobs_repo.get_outputs(s, job_id=job_id) == []


async def test_ensure_user_creates_renames_and_survives_a_burst_of_first_jobs(sessions) -> None:  # type: ignore[no-untyped-def]
    from db.models import User

    async def ensure(user_id: int, name: str) -> None:
        async with sessions.begin() as s:
            await users_repo.ensure_user(s, user_id=user_id, name=name)

    async def name_of(user_id: int) -> str | None:
        async with sessions() as s:
            user = await s.get(User, user_id)
            return user.name if user is not None else None

    await ensure(BIG_ID, "first")
    with statements_sent(sessions) as statements:
        await ensure(BIG_ID, "")  # no name given: the stored one stays
    assert len(statements) == 1 and statements[0].startswith("INSERT")  # one upsert, no row loaded
    assert await name_of(BIG_ID) == "first"
    await ensure(BIG_ID, "renamed" + "x" * 200)
    assert await name_of(BIG_ID) == "renamed" + "x" * 93  # names are cut to 100 characters
    await asyncio.gather(*(ensure(BIG_ID + 1, "newcomer") for _ in range(20)))  # their first jobs at once
    assert await name_of(BIG_ID + 1) == "newcomer"


async def test_a_claim_takes_its_job_with_one_update_returning_the_row(sessions) -> None:  # type: ignore[no-untyped-def]
    ids = await _add(sessions, 2)
    with statements_sent(sessions) as statements:
        async with sessions.begin() as s:
            job = await job_queue.claim_next_job(s, worker="main/cuda:0#0")
    assert job is not None and job.id == ids[0]
    assert (job.status, job.worker, job.attempts) == (JobStatus.running, "main/cuda:0#0", 1) and job.started_at is not None
    updates = [i for i, st in enumerate(statements) if st.startswith("UPDATE jobs")]
    assert len(updates) == 1 and "RETURNING" in statements[updates[0]]
    assert updates[0] == len(statements) - 1  # nothing loaded after it
