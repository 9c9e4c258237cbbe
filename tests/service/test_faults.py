"""Faults the running bot recovers from without a restart (issue 14, item 15).

Short limits are injected (sweep_seconds, run timeouts, tolerated errors); the sweep is called
directly where the bot would call it on its timer, so nothing here sleeps for long.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
from saq.job import Job as SaqJob
from saq.job import Status
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from bot.services.jobs import Origin
from db import queue as job_queue
from db.models import Job, JobStatus, utcnow
from db.repositories import jobs as jobs_repo
from inference.pool import InferencePool
from inference.remote import RemotePool, _InFlight
from inference.remote_queue import RemoteJobError, encode_result, job_key
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobTimedOut
from tests.scale.test_remote import RecordingSource
from tests.service import test_job_service as base
from tests.service.test_job_service import _params


@pytest.fixture
async def service_env(tmp_path):  # type: ignore[no-untyped-def]
    """test_job_service's env: a job service on SQLite with a scripted engine and a recording delivery."""
    async for value in base.env.__wrapped__(tmp_path):
        yield value


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110  (polls the database)
            await asyncio.sleep(0.02)


async def test_a_failed_delivery_is_retried_by_the_running_bot(service_env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, _engine, _pool = service_env
    service.sweep_seconds = 0.0  # a delivery older than one sweep is retried
    real, refused = recorder.deliver, []

    async def flaky(job, outputs):  # type: ignore[no-untyped-def]
        if not refused:
            refused.append(job.id)
            raise ConnectionError("Discord answered 503")
        return await real(job, outputs)

    recorder.deliver = flaky
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))

    async def finished() -> bool:
        job = await service.get_job(ticket.job.id)
        return job.status == JobStatus.completed and bool(refused) and not service._delivering

    await _until(finished)
    assert not (await service.get_job(ticket.job.id)).delivered
    await service.sweep()
    await service.drain()
    assert (await service.get_job(ticket.job.id)).delivered
    assert [e for e in recorder.events if e[0] == "deliver"] == [("deliver", ticket.job.id, [0])]


async def test_a_job_whose_completion_hit_a_database_error_is_recorded_by_the_sweep(service_env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    service, _recorder, _engine, _pool = service_env
    real, broke = jobs_repo.complete_job, []

    async def complete_once_broken(session, **kw):  # type: ignore[no-untyped-def]
        if not broke:
            broke.append(kw["job_id"])
            raise OperationalError("UPDATE jobs", {}, Exception("database is locked"))
        return await real(session, **kw)

    monkeypatch.setattr(jobs_repo, "complete_job", complete_once_broken)
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))

    async def kept() -> bool:
        live = service._live.get(ticket.job.id)
        return live is not None and live.outcome is not None

    await _until(kept)
    assert (await service.get_job(ticket.job.id)).status == JobStatus.running
    await service.sweep()
    await service.drain()
    job = await service.get_job(ticket.job.id)
    assert job.status == JobStatus.completed and job.delivered and ticket.job.id not in service._live


async def test_a_running_job_this_process_no_longer_runs_is_requeued(service_env) -> None:  # type: ignore[no-untyped-def]
    service, _recorder, _engine, pool = service_env
    pool.pause()
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))
    async with service.sessions.begin() as session:  # claimed, then the process lost track of it
        claimed = await job_queue.claim_next_job(session, worker="main/cpu#7")
        assert claimed.id == ticket.job.id
        await session.execute(update(Job).where(Job.id == claimed.id)
                              .values(started_at=utcnow() - timedelta(minutes=5)))
    service.sweep_seconds = 1.0
    requeued, failed = await service.sweep()
    assert requeued == [ticket.job.id] and failed == []
    assert (await service.get_job(ticket.job.id)).status == JobStatus.queued


class _FlakyQueue:
    """Answers the job's record after ``errors`` Redis errors."""

    def __init__(self, errors: int, done: SaqJob) -> None:
        self.errors = errors
        self.done = done

    async def job(self, key: str) -> SaqJob:
        if self.errors:
            self.errors -= 1
            raise ConnectionError("Connection reset by peer")
        return self.done


def _done(job_id: int) -> SaqJob:
    result = encode_result(GenerationResult(job_id, [GeneratedImage(b"png", 1, 8, 8)], None, 0.1))
    return SaqJob("atelier.generate", key=job_key(job_id), status=Status.COMPLETE, result=result)


async def test_redis_hiccups_while_following_a_remote_job_are_tolerated() -> None:
    source = RecordingSource()
    pool = RemotePool(source, "redis://127.0.0.1:1/0", poll_interval=0.01, redis_errors_tolerated=3)
    pool.queue = _FlakyQueue(3, _done(5))  # type: ignore[assignment]
    await pool._follow(_InFlight(5, job_key(5)))
    assert [r.job_id for r in source.results] == [5] and source.failures == []
    # more errors in a row than tolerated: the job is given up as lost (and the member told)
    pool.queue = _FlakyQueue(4, _done(6))  # type: ignore[assignment]
    await pool._follow(_InFlight(6, job_key(6)))
    ((job_id, error),) = source.failures
    assert job_id == 6 and isinstance(error, RemoteJobError)


class _HangingEngine:
    """Job 1's pipeline call never returns (until released); every other job runs normally."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.builds = 0

    def factory(self, device: str) -> _HangingEngine:
        self.builds += 1
        return self

    def run(self, request: GenerationRequest, on_step=None, is_cancelled=None) -> GenerationResult:  # type: ignore[no-untyped-def]
        if request.job_id == 1:
            self.release.wait(30)
        return GenerationResult(request.job_id, [GeneratedImage(b"png", 1, 8, 8)], None, 0.0)


async def test_the_watchdog_fails_a_run_that_never_returns_and_the_device_goes_on() -> None:
    source = RecordingSource()
    engine = _HangingEngine()
    pool = InferencePool(source, engine.factory, ["cpu"], poll_interval=0.05, run_timeout=0.3)
    source.queued = [GenerationRequest(job_id=1, model="m", prompt="hangs"),
                     GenerationRequest(job_id=2, model="m", prompt="runs")]
    await pool.start()
    try:
        pool.wake()
        await source.until(lambda: bool(source.failures) and bool(source.results), timeout=10)
    finally:
        engine.release.set()
        await pool.stop()
    ((job_id, error),) = source.failures
    assert job_id == 1 and isinstance(error, JobTimedOut) and error.seconds == 0.3
    assert [r.job_id for r in source.results] == [2] and engine.builds == 2  # a fresh engine, a fresh thread
    assert pool.workers[0].abandoned == 1
