"""What a remote worker says is checked: its results and its device count (issue 14, item 12)."""

from __future__ import annotations

from typing import Any

from saq.job import Job, Status

from inference.remote import RemotePool, _InFlight
from inference.remote_queue import RemoteJobError, encode_result, job_key
from inference.types import GeneratedImage, GenerationResult
from tests.scale.test_remote import RecordingSource


class _Info:
    def __init__(self, workers: dict[str, Any]) -> None:
        self.workers = workers

    async def info(self) -> dict[str, Any]:
        return {"workers": self.workers}


def _pool(source: RecordingSource) -> RemotePool:
    return RemotePool(source, "redis://127.0.0.1:1/0")


async def test_a_result_for_another_job_does_not_complete_it() -> None:
    source = RecordingSource()
    pool = _pool(source)
    forged = encode_result(GenerationResult(99, [GeneratedImage(b"png", 1, 8, 8)], None, 0.1))
    done = Job("atelier.generate", key=job_key(7), status=Status.COMPLETE, result=forged)
    await pool._finish(_InFlight(7, job_key(7)), done)
    assert source.results == []
    ((job_id, error),) = source.failures
    assert job_id == 7 and isinstance(error, RemoteJobError) and "another job" in str(error)
    # a result that is the job's own goes through
    own = Job("atelier.generate", key=job_key(8), status=Status.COMPLETE,
              result=encode_result(GenerationResult(8, [GeneratedImage(b"png", 1, 8, 8)], None, 0.1)))
    await pool._finish(_InFlight(8, job_key(8)), own)
    assert [r.job_id for r in source.results] == [8]


async def test_a_malformed_result_fails_the_job() -> None:
    source = RecordingSource()
    pool = _pool(source)
    await pool._finish(_InFlight(3, job_key(3)), Job("f", key=job_key(3), status=Status.COMPLETE, result={"x": 1}))
    assert [j for j, _ in source.failures] == [3] and source.results == []


async def test_the_device_count_a_worker_announces_is_capped() -> None:
    pool = _pool(RecordingSource())
    pool.queue = _Info({"a": {"metadata": {"devices": 100000}}, "b": {"metadata": {"devices": "lots"}},
                        "c": {"metadata": {"devices": 2}}, "d": {"metadata": {"devices": -5}}})  # type: ignore[assignment]
    assert await pool.capacity() == 16 + 1 + 2 + 1


async def test_a_remote_worker_receives_a_jobs_stored_input(redis_queue: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Inputs live in the database apart from the job (issue 14, item 7); the job handed to Redis carries them."""
    from bot.services.jobs import JobService, Origin
    from db import migrate
    from db.engine import create_engine, create_sessionmaker
    from inference.models import ModelRegistry
    from tests.scale.conftest import REDIS_URL
    from tests.service.test_job_inputs import UPLOAD, _img2img
    from tests.service.test_job_service import TOML

    (tmp_path / "models.toml").write_text(TOML)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(engine)
    service = JobService(create_sessionmaker(engine), ModelRegistry.load(tmp_path / "models.toml"))
    pool = RemotePool(service, REDIS_URL, queue_name=redis_queue, poll_interval=60)
    await pool.start()
    try:
        ticket = await service.submit(command="imagine", params=_img2img(service), origin=Origin(user_id=1))
        assert "init_image" not in ticket.job.params
        request = await service.claim(pool.name)
        assert request is not None
        await pool._send(request)
        assert pool.queue is not None
        sent = await pool.queue.job(job_key(ticket.job.id))
        assert sent is not None and sent.kwargs["request"]["init_image"] == UPLOAD
    finally:
        await pool.stop()
        await engine.dispose()
