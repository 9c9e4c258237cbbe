"""JobService with the real inference pool and a scripted engine: the path every command takes."""

from __future__ import annotations

import asyncio
import io
import threading

import pytest
from PIL import Image
from sqlalchemy import update

from bot.errors import InvalidOption, QueueFull
from bot.services.jobs import ImagineOptions, JobService, Origin
from db import migrate
from db import queue as job_queue
from db.engine import create_engine, create_sessionmaker
from db.models import Job, JobStatus
from db.repositories import jobs as jobs_repo
from inference.models import ModelRegistry
from inference.pool import InferencePool
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled

TOML = """
default = "fast"
packaged = false
[models.fast]
kind = "sd15"
source = "/nonexistent"
steps = 4
guidance = 7.0
scheduler = "euler"
width = 64
height = 64
max_steps = 50
max_count = 4
"""


def _png(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "red").save(buf, "PNG")
    return buf.getvalue()


class ScriptedEngine:
    """Runs `steps` fake steps, honouring cancellation between them like the real runner."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.tail = threading.Event()  # held: the job sits after its last step (decoding, encoding)
        self.tail.set()
        self.calls: list[GenerationRequest] = []
        self.fail_with: BaseException | None = None

    def run(self, request, on_step=None, is_cancelled=None):  # type: ignore[no-untyped-def]
        self.calls.append(request)
        for i in range(request.steps):
            self.gate.wait(5)
            if is_cancelled and is_cancelled():
                raise JobCancelled(request.job_id, i)
            if on_step:
                on_step(i + 1, request.steps)
        self.tail.wait(5)
        if self.fail_with is not None:
            raise self.fail_with
        images = [GeneratedImage(_png(), s, 8, 8) for s in request.seeds()]
        return GenerationResult(request.job_id, images, _png(16, 16) if request.count > 1 else None, 0.01)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.changed = asyncio.Event()

    def _note(self, *event) -> None:  # type: ignore[no-untyped-def]
        self.events.append(event)
        self.changed.set()

    async def show_queued(self, job, position, total, eta):  # type: ignore[no-untyped-def]
        self._note("queued", job.id, position, total)

    async def show_progress(self, job, step, total):  # type: ignore[no-untyped-def]
        self._note("progress", job.id, step, total)

    async def deliver(self, job, outputs):  # type: ignore[no-untyped-def]
        self._note("deliver", job.id, [o.index for o in outputs])
        return 1000 + job.id

    async def deliver_failure(self, job, message):  # type: ignore[no-untyped-def]
        self._note("failure", job.id, message)

    async def wait(self, predicate, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
        async def loop() -> None:
            while not predicate(self.events):
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)


@pytest.fixture
async def env(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "models.toml").write_text(TOML)
    engine_db = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(engine_db)
    service = JobService(create_sessionmaker(engine_db), ModelRegistry.load(tmp_path / "models.toml"),
                         progress_interval=0.0, max_queued_per_user=5)
    service.delivery = recorder = Recorder()
    engine = ScriptedEngine()
    pool = InferencePool(service, lambda device: engine, ["cpu"], poll_interval=0.2)
    service.pool = pool
    await pool.start()
    yield service, recorder, engine, pool
    await pool.stop()
    await service.drain()
    await engine_db.dispose()


def _params(service: JobService, **kw) -> dict:  # type: ignore[no-untyped-def]
    return service.prepare_imagine(ImagineOptions(prompt="a lighthouse at dusk", **kw))


async def test_job_runs_and_is_delivered_once(env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, engine, _ = env
    ticket = await service.submit(command="imagine", params=_params(service, seed=7, count=4), origin=Origin(user_id=1))
    await recorder.wait(lambda ev: any(e[0] == "deliver" for e in ev))
    await service.drain()
    assert engine.calls[0].seeds() == [7, 8, 9, 10]
    deliveries = [e for e in recorder.events if e[0] == "deliver"]
    assert deliveries == [("deliver", ticket.job.id, [-1, 0, 1, 2, 3])]
    job = await service.get_job(ticket.job.id)
    assert job.status == JobStatus.completed and job.delivered and job.message_id == 1000 + job.id
    assert job.interaction_token is None
    progress = [e for e in recorder.events if e[0] == "progress"]
    assert progress and all(step < total for _, _, step, total in progress)


async def test_a_job_done_within_the_progress_interval_gets_no_progress_edit(env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, _engine, _ = env
    service.progress_interval = 60.0
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))
    await recorder.wait(lambda ev: any(e[0] == "deliver" for e in ev))
    await service.drain()
    assert [e[0] for e in recorder.events if e[1] == ticket.job.id] == ["deliver"]


async def test_a_fresh_result_is_posted_without_reading_it_back(env, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    service, recorder, _engine, _ = env
    reads: list[int] = []
    real = jobs_repo.get_outputs
    get_job = jobs_repo.get_job

    async def counted(session, *, job_id):  # type: ignore[no-untyped-def]
        reads.append(job_id)
        return await real(session, job_id=job_id)

    async def counted_job(session, *, job_id):  # type: ignore[no-untyped-def]
        reads.append(-job_id)
        return await get_job(session, job_id=job_id)

    monkeypatch.setattr(jobs_repo, "get_outputs", counted)
    monkeypatch.setattr(jobs_repo, "get_job", counted_job)
    posted: list[bytes] = []
    deliver = recorder.deliver

    async def keep(job, outputs):  # type: ignore[no-untyped-def]
        assert job.status == JobStatus.completed and not job.delivered  # the row as its completion left it
        posted.extend(o.data for o in outputs)
        return await deliver(job, outputs)

    recorder.deliver = keep
    ticket = await service.submit(command="imagine", params=_params(service, count=2), origin=Origin(user_id=1))
    await recorder.wait(lambda ev: any(e[0] == "deliver" for e in ev))
    await service.drain()
    assert reads == []
    async with service.sessions() as s:
        stored = await real(s, job_id=ticket.job.id)
    assert posted == [o.data for o in stored] and len(posted) == 3  # grid first, then the two images
    async with service.sessions.begin() as s:  # delivered again after a restart: read from the database
        await s.execute(update(Job).where(Job.id == ticket.job.id).values(delivered=False))
    await service.deliver(ticket.job.id)
    assert reads == [-ticket.job.id, ticket.job.id] and posted[3:] == posted[:3]


@pytest.mark.parametrize(("options", "needle"), [
    ({"steps": 0}, "Steps must be 1-50 for fast; you asked for 0"),
    ({"steps": 10000}, "you asked for 10000"),
    ({"model": "nope"}, "fast"),
    ({"count": 9}, "Count must be 1-4"),
    ({"aspect": "5:1"}, "16:9"),
    ({"guidance": -1.0}, "Guidance"),
])
async def test_bad_options_are_specific(env, options, needle) -> None:  # type: ignore[no-untyped-def]
    service = env[0]
    with pytest.raises(InvalidOption) as info:
        _params(service, **options)
    assert needle in info.value.message


async def test_empty_and_huge_prompts(env) -> None:  # type: ignore[no-untyped-def]
    service = env[0]
    with pytest.raises(InvalidOption, match="empty"):
        service.prepare_imagine(ImagineOptions(prompt="   "))
    with pytest.raises(InvalidOption, match="6000 characters"):
        service.prepare_imagine(ImagineOptions(prompt="x" * 6000))


async def test_cancel_running_stops_between_steps(env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, engine, _ = env
    engine.gate.clear()
    ticket = await service.submit(command="imagine", params=_params(service, steps=20), origin=Origin(user_id=1))
    for _ in range(100):
        if (await service.get_job(ticket.job.id)).status == JobStatus.running:
            break
        await asyncio.sleep(0.02)
    assert await service.cancel(job_id=ticket.job.id, user_id=1) == JobStatus.running
    engine.gate.set()
    await recorder.wait(lambda ev: any(e[0] == "failure" for e in ev))
    job = await service.get_job(ticket.job.id)
    assert job.status == JobStatus.canceled
    failure = next(e for e in recorder.events if e[0] == "failure")
    assert "Canceled at step" in failure[2]


async def test_per_user_cap(env) -> None:  # type: ignore[no-untyped-def]
    service, _, _engine, pool = env
    pool.pause()
    for _ in range(5):
        await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=2))
    with pytest.raises(QueueFull, match="limit is 5"):
        await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=2))
    await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=3))


@pytest.mark.parametrize(("error", "shown"), [
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "ran out of memory"),
    # the member sees the failure's class, never the path or errno inside it (issue 14, item 11)
    (OSError("[Errno 2] No such file: '/srv/atelier/models/sd15/unet/model.safetensors'"), "could not be loaded"),
])
async def test_failure_is_reported_without_traceback_or_internals(env, error: BaseException, shown: str) -> None:  # type: ignore[no-untyped-def]
    service, recorder, engine, _ = env
    engine.fail_with = error
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))
    await recorder.wait(lambda ev: any(e[0] == "failure" for e in ev))
    job = await service.get_job(ticket.job.id)
    assert job.status == JobStatus.failed and shown in job.error
    assert "/srv" not in job.error and "Errno" not in job.error and "Tried to allocate" not in job.error
    assert all("/srv" not in str(e) for e in recorder.events)


async def test_recovery_requeues_and_redelivers(env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, _engine, pool = env
    pool.pause()
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))
    async with service.sessions.begin() as s:  # simulate a crash mid-run
        await job_queue.claim_next_job(s, worker="main/cpu#0")  # this process, before it stopped
    requeued, failed = await service.recover()
    assert requeued == [ticket.job.id] and failed == []
    pool.resume()
    await recorder.wait(lambda ev: any(e[0] == "deliver" for e in ev))
    await service.drain()
    assert await service.recover() == ([], [])  # delivered: nothing left to redo
    assert len([e for e in recorder.events if e[0] == "deliver"]) == 1


async def test_recovery_leaves_jobs_other_live_processes_run(env) -> None:  # type: ignore[no-untyped-def]
    """Several bot processes on one database: at start-up a process re-queues its own interrupted
    jobs, and another process's only once its heartbeat has lapsed (that process died for good)."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from bot.services.recovery import STALE_AFTER
    from db.models import Job

    service, _recorder, _engine, pool = env
    pool.pause()
    ids = [(await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=u))).job.id
           for u in (1, 2, 3)]
    async with service.sessions.begin() as s:
        for worker in ("main/cpu#0", "shards-1/cuda:0#0", "shards-2/cuda:0#0"):  # ids[0], ids[1], ids[2]
            await job_queue.claim_next_job(s, worker=worker)
        await s.execute(update(Job).where(Job.id == ids[2])
                        .values(heartbeat_at=datetime.now(UTC) - STALE_AFTER - timedelta(seconds=5)))
    requeued, failed = await service.recover()  # this process is "main"
    assert sorted(requeued) == [ids[0], ids[2]] and failed == []
    assert (await service.get_job(ids[1])).status == JobStatus.running

    async with service.sessions.begin() as s:  # "shards-1" goes quiet too; the sweep notices
        await s.execute(update(Job).where(Job.id == ids[1])
                        .values(heartbeat_at=datetime.now(UTC) - STALE_AFTER - timedelta(seconds=5)))
    assert await service.sweep() == ([ids[1]], [])


async def test_heartbeat_keeps_this_process_jobs_alive(env) -> None:  # type: ignore[no-untyped-def]
    service, _recorder, _engine, pool = env
    pool.pause()
    ticket = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))
    async with service.sessions.begin() as s:
        await job_queue.claim_next_job(s, worker="main/cpu#0")
        before = (await jobs_repo.get_job(s, job_id=ticket.job.id)).heartbeat_at
    assert before is not None, "a claim counts as a sign of life"
    assert await service.sweep() == ([], [])  # its own running job is never re-queued by the sweep
    job = await service.get_job(ticket.job.id)
    assert job.status == JobStatus.running
    assert job.heartbeat_at is not None and job.heartbeat_at >= before


async def _claimed_ahead(service: JobService, engine: ScriptedEngine) -> tuple[int, int]:
    """Two members' jobs; the second is claimed while the first is past its last step."""
    engine.tail.clear()
    engine.gate.clear()  # both are queued before the first reaches its last step
    first = await service.submit(command="imagine", params=_params(service, seed=1), origin=Origin(user_id=1))
    second = await service.submit(command="imagine", params=_params(service, seed=2), origin=Origin(user_id=2))
    engine.gate.set()
    for _ in range(250):
        if (await service.get_job(second.job.id)).status == JobStatus.running:
            break
        await asyncio.sleep(0.02)
    assert (await service.get_job(second.job.id)).status == JobStatus.running
    assert [r.job_id for r in engine.calls] == [first.job.id], "the second job must not start before the first ends"
    return first.job.id, second.job.id


async def test_next_job_is_claimed_during_the_last_step(env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, engine, _ = env
    first, second = await _claimed_ahead(service, engine)
    engine.tail.set()
    await recorder.wait(lambda ev: {e[1] for e in ev if e[0] == "deliver"} == {first, second})
    assert [r.job_id for r in engine.calls] == [first, second]
    job = await service.get_job(second)
    assert job.status == JobStatus.completed and job.attempts == 1


async def test_pause_puts_a_job_claimed_ahead_back(env) -> None:  # type: ignore[no-untyped-def]
    service, recorder, engine, pool = env
    first, second = await _claimed_ahead(service, engine)
    pool.pause()
    engine.tail.set()
    await recorder.wait(lambda ev: any(e[0] == "deliver" and e[1] == first for e in ev))
    for _ in range(250):
        job = await service.get_job(second)
        if job.status == JobStatus.queued:
            break
        await asyncio.sleep(0.02)
    assert (job.status, job.attempts, job.worker, job.started_at) == (JobStatus.queued, 0, None, None)
    assert [r.job_id for r in engine.calls] == [first]
    pool.resume()
    await recorder.wait(lambda ev: any(e[0] == "deliver" and e[1] == second for e in ev))
    assert (await service.get_job(second)).attempts == 1


async def test_stopping_puts_a_job_claimed_ahead_back(env) -> None:  # type: ignore[no-untyped-def]
    service, _, engine, pool = env
    first, second = await _claimed_ahead(service, engine)
    await pool.stop()
    engine.tail.set()
    job = await service.get_job(second)
    assert (job.status, job.attempts) == (JobStatus.queued, 0)
    assert (await service.get_job(first)).status == JobStatus.running  # interrupted: recovery re-queues it


async def test_the_ticket_and_the_queue_command_estimate_the_same_start(env) -> None:  # type: ignore[no-untyped-def]
    from bot.services.accounts import AccountService
    from bot.services.jobs import starts_in

    service, recorder, engine, _ = env
    first = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=1))
    await recorder.wait(lambda ev: any(e[0] == "deliver" for e in ev))
    async with service.sessions.begin() as session:  # the model's runs so far took 10 s each
        await session.execute(update(Job).where(Job.id == first.job.id).values(run_seconds=10.0))
    engine.gate.clear()
    running = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=2))
    for _ in range(200):
        if (await service.get_job(running.job.id)).status == JobStatus.running:
            break
        await asyncio.sleep(0.01)
    waiting = await service.submit(command="imagine", params=_params(service), origin=Origin(user_id=3))
    # Next in line behind one running job on the one device: it starts when that one ends.
    assert (waiting.position, waiting.eta_seconds) == (1, pytest.approx(10.0))
    entries = await AccountService(service, default_daily=100).queue(user_id=3)
    assert [(e.position, e.eta_seconds) for e in entries] == [(1, pytest.approx(10.0))]
    engine.gate.set()
    await recorder.wait(lambda ev: sum(e[0] == "deliver" for e in ev) == 3)

    assert starts_in(None, 3, 1, 1) is None  # no run yet: the embed says "soon"
    assert starts_in(10.0, 1, 0, 1) == 0.0  # an idle device starts it at once
    assert starts_in(10.0, 5, 4, 2) == pytest.approx(30.0)  # 4 ahead and 2 running, over 2 devices
