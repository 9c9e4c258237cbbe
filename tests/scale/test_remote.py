"""Remote GPU workers over saq + a real Redis: dispatch, progress, cancel, errors, a worker killed mid-job.

Workers are real `atelier worker` processes with a scripted engine (tests/scale/fake_engine.py).
Redis comes from ATELIER_TEST_REDIS_URL (default redis://127.0.0.1:6379/0); each test uses its own
queue name and deletes its keys afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from inference.remote import RemotePool, redacted
from inference.remote_queue import FUNCTION, AtelierQueue, RemoteJobError
from inference.types import GenerationRequest, GenerationResult, JobCancelled, Progress
from tests.scale.conftest import REDIS_URL

ROOT = Path(__file__).resolve().parents[2]


class RecordingSource:
    """A JobSource in memory: hands out queued requests, records what came back."""

    def __init__(self) -> None:
        self.queued: list[GenerationRequest] = []
        self.progress_events: list[Progress] = []
        self.results: list[GenerationResult] = []
        self.failures: list[tuple[int, BaseException]] = []
        self.changed = asyncio.Event()

    async def claim(self, worker: str) -> GenerationRequest | None:
        return self.queued.pop(0) if self.queued else None

    async def progress(self, event: Progress) -> None:
        self.progress_events.append(event)
        self.changed.set()

    async def finished(self, result: GenerationResult) -> None:
        self.results.append(result)
        self.changed.set()

    async def failed(self, job_id: int, error: BaseException) -> None:
        self.failures.append((job_id, error))
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 60.0) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


class Workers:
    def __init__(self, queue: str, tmp: Path) -> None:
        self.queue = queue
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, step_seconds: float = 0.05) -> subprocess.Popen[bytes]:
        env = {**os.environ, "ATELIER_REDIS_URL": REDIS_URL, "ATELIER_FAKE_STEP_SECONDS": str(step_seconds), "ATELIER_FAKE_MARK_DIR": str(self.marks)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker", "--queue", self.queue, "--devices", "cpu",
             "--engine", "tests.scale.fake_engine:factory", "--sweep-seconds", "1"],
            cwd=ROOT, env=env)
        self.procs.append(proc)
        return proc

    def taken_by(self, job_id: int) -> list[int]:
        return [int(p.name.split(".")[1]) for p in self.marks.glob(f"{job_id}.*")]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def workers(redis_queue: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    group = Workers(redis_queue, tmp_path)
    yield group
    group.stop()


@pytest.fixture
async def pool(redis_queue: str) -> AsyncIterator[tuple[RemotePool, RecordingSource]]:
    source = RecordingSource()
    remote = RemotePool(source, REDIS_URL, queue_name=redis_queue, heartbeat=2, poll_interval=0.2)
    await remote.start()
    yield remote, source
    await remote.stop()


async def test_a_late_write_from_a_run_cannot_reopen_or_steal_a_job(redis_queue: str) -> None:
    """The hang this module once had: saq's job.update() reads the status, then writes the whole job;
    a progress write racing with the finish put a completed job back to "active" for ever."""
    import redis.asyncio as aioredis
    from saq.job import Job, Status

    queue = AtelierQueue(aioredis.from_url(REDIS_URL), name=redis_queue)
    await queue.connect()
    try:
        await queue.enqueue(Job(FUNCTION, key="done", ttl=60))
        job = await queue.dequeue(timeout=1)
        job.attempts += 1
        await job.update(status=Status.ACTIVE)  # as saq's worker does on dequeue
        late = queue.copy(job)
        await job.finish(Status.COMPLETE, result={"ok": True})
        await late.update(meta={"step": 3, "total": 4})
        stored = await queue.job("done")
        assert stored.status == Status.COMPLETE and stored.result == {"ok": True}
        assert 0 < await queue.redis.ttl(queue.job_id("done")) <= 60

        await queue.enqueue(Job(FUNCTION, key="swept", retries=2))
        job = await queue.dequeue(timeout=1)
        job.attempts += 1
        await job.update(status=Status.ACTIVE)
        zombie = queue.copy(job)
        await queue.retry(job, "swept")  # what the sweep does when a heartbeat is missed
        again = await queue.dequeue(timeout=1)
        again.attempts += 1
        await again.update(status=Status.ACTIVE)
        await zombie.update(meta={"step": 1, "total": 4})
        await zombie.finish(Status.COMPLETE, result={"from": "zombie"})
        stored = await queue.job("swept")
        assert stored.status == Status.ACTIVE and stored.attempts == 2 and stored.result is None and not stored.meta
    finally:
        await queue.disconnect()


def test_redis_urls_lose_their_password_in_logs() -> None:
    assert redacted("rediss://:s3cret@gpu.example:6380/0") == "rediss://gpu.example:6380/0"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    # redis-py also takes the password (and user) from the query string
    assert redacted("redis://gpu.example:6379/0?password=s3cret&db=1") == "redis://gpu.example:6379/0?password=***&db=1"
    assert "s3cret" not in redacted("rediss://u:p@h/0?Password=s3cret&username=bob&ssl_cert_reqs=none")


def _request(job_id: int, steps: int = 8, prompt: str = "a cat") -> GenerationRequest:
    return GenerationRequest(job_id=job_id, model="m", prompt=prompt, steps=steps, seed=1000 + job_id)


async def test_dispatch_with_progress_and_result(pool, workers) -> None:  # type: ignore[no-untyped-def]
    remote, source = pool
    proc = workers.start(step_seconds=0.1)
    source.queued.append(_request(1, steps=12))
    remote.wake()
    await source.until(lambda: bool(source.results or source.failures), timeout=20)
    assert source.failures == []
    (result,) = source.results
    assert result.job_id == 1 and result.parameters == f"pid={proc.pid}"
    assert result.images[0].seed == 1001 and result.images[0].png.startswith(b"\x89PNG fake 1001")
    steps = [e.step for e in source.progress_events if e.job_id == 1]
    assert steps and steps == sorted(steps) and all(e.total == 12 for e in source.progress_events)
    assert remote.busy == 0 and remote.size == 1
    ttl = await remote.queue.redis.ttl(remote.queue.job_id("atelier-job-1"))
    assert 0 < ttl <= remote.result_ttl  # the result leaves Redis on its own


async def test_a_download_on_the_worker_reaches_the_members_message(pool, workers) -> None:  # type: ignore[no-untyped-def]
    remote, source = pool
    workers.start(step_seconds=0.3)
    source.queued.append(_request(5, steps=2, prompt="first use"))
    remote.wake()
    await source.until(lambda: bool(source.results or source.failures), timeout=30)
    loading = [e for e in source.progress_events if e.loading is not None]
    assert loading and all(e.loading == "m" and e.total_bytes == 2_000_000_000 for e in loading)
    done = [e.done_bytes for e in loading]
    assert done == sorted(done) and source.results


async def test_cancel_aborts_a_running_job(pool, workers) -> None:  # type: ignore[no-untyped-def]
    remote, source = pool
    workers.start(step_seconds=0.05)
    source.queued.append(_request(2, steps=400))  # 20 s if nothing stops it
    remote.wake()
    await source.until(lambda: bool(source.progress_events))
    remote.cancel(2)
    await source.until(lambda: bool(source.failures), timeout=15)
    (job_id, error), = source.failures
    assert job_id == 2 and isinstance(error, JobCancelled) and error.step < 400
    assert source.results == []


async def test_engine_errors_come_back_as_their_kind_without_retry(pool, workers) -> None:  # type: ignore[no-untyped-def]
    remote, source = pool
    workers.start()
    source.queued.append(_request(3, prompt="fail"))
    remote.wake()
    await source.until(lambda: bool(source.failures))
    (job_id, error), = source.failures
    assert job_id == 3 and isinstance(error, RemoteJobError) and isinstance(error, ValueError)
    assert "always fails" in str(error) and len(workers.taken_by(3)) == 1


async def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes_once(pool, workers) -> None:  # type: ignore[no-untyped-def]
    remote, source = pool
    first, second = workers.start(step_seconds=0.05), workers.start(step_seconds=0.05)
    source.queued.append(_request(4, steps=60))  # 3 s of work
    await asyncio.sleep(1.5)  # both workers announce themselves
    remote.wake()
    await source.until(lambda: bool(source.progress_events))
    (victim,) = workers.taken_by(4)
    os.kill(victim, signal.SIGKILL)
    survivor = second.pid if victim == first.pid else first.pid
    await source.until(lambda: bool(source.results or source.failures), timeout=60)
    await asyncio.sleep(1.0)  # nothing else may arrive
    assert source.failures == []
    (result,) = source.results
    assert result.job_id == 4 and result.parameters == f"pid={survivor}"
    assert sorted(workers.taken_by(4)) == sorted([victim, survivor])
