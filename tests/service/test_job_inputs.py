"""Job inputs live in their own table, not in the job's params (issue 14, item 7)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterator

import pytest
from sqlalchemy import delete, event, func, select

from bot.services.jobs import JobService, Origin
from db import migrate
from db import queue as job_queue
from db.engine import create_engine, create_sessionmaker
from db.models import Job, JobInput
from db.repositories import jobs as jobs_repo
from inference.models import ModelRegistry
from tests.service.test_job_service import TOML, _params

UPLOAD = base64.b64encode(os.urandom(300_000)).decode("ascii")  # a 300 kB upload, as the commands store it
POSE = base64.b64encode(os.urandom(20_000)).decode("ascii")


@pytest.fixture
async def service(tmp_path):  # type: ignore[no-untyped-def]
    """A job service with no pool: jobs stay queued until the test claims them."""
    (tmp_path / "models.toml").write_text(TOML)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(engine)
    yield JobService(create_sessionmaker(engine), ModelRegistry.load(tmp_path / "models.toml"))
    await engine.dispose()


@contextlib.contextmanager
def statements(service: JobService) -> Iterator[list[str]]:
    sent: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    bind = service.sessions.kw["bind"].sync_engine
    event.listen(bind, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(bind, "before_cursor_execute", note)


def _img2img(service: JobService) -> dict:
    return {**_params(service), "task": "img2img", "strength": 0.6, "init_image": UPLOAD}


async def test_thirty_queued_uploads_leave_the_scheduler_small_rows(service: JobService) -> None:
    tickets = [await service.submit(command="imagine", params=_img2img(service), origin=Origin(user_id=u % 3 + 1))
               for u in range(30)]
    async with service.sessions() as session:
        rows = (await session.execute(select(Job.id, Job.params))).all()
        assert await session.scalar(select(func.count()).select_from(JobInput)) == 30
    for _, params in rows:
        assert "init_image" not in params and set(params["inputs"]) == {"init_image"}
        assert len(json.dumps(params)) < 2000  # the image is not in the row the scheduler reads
    with statements(service) as sent:
        async with service.sessions() as session:
            last = await jobs_repo.get_job(session, job_id=tickets[-1].job.id)
            assert await job_queue.queue_position(session, job=last) == (30, 30)
        request = await service.claim("main/cpu#0")
    assert request is not None and request.init_image == UPLOAD and request.task == "img2img"  # the worker gets it
    reads = [s for s in sent if "job_inputs" in s]
    assert len(reads) == 1 and "job_inputs.job_id =" in reads[0]  # only the claimed job's input is read


async def test_a_rerun_owns_a_copy_and_a_restart_still_finds_it(service: JobService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    params = {**_img2img(service), "task": "pose", "init_image": None, "control_image": POSE}
    parent = (await service.submit(command="pose", params=params, origin=Origin(user_id=1))).job
    child = (await service.reroll(job_id=parent.id, origin=Origin(user_id=2))).job  # type: ignore[arg-type]
    assert child.params["inputs"]["control_image"] != parent.params["inputs"]["control_image"]
    async with service.sessions.begin() as session:  # the parent is forgotten or pruned
        await session.execute(delete(Job).where(Job.id == parent.id))
    restarted = JobService(service.sessions, service.registry)  # a new process on the same database
    request = await restarted.claim("main/cpu#0")
    assert request is not None and request.job_id == child.id and request.control_image == POSE
    async with service.sessions() as session:  # the parent's input went with it (ON DELETE CASCADE)
        assert await session.scalar(select(func.count()).select_from(JobInput)) == 1


async def test_the_migration_moves_inline_inputs_out_of_queued_jobs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from db.migrate import _run_upgrade, alembic_config

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate.upgrade(engine)

        def down(connection) -> None:  # type: ignore[no-untyped-def]
            cfg = alembic_config()
            cfg.attributes["connection"] = connection
            with connection.begin():
                command.downgrade(cfg, "job_inputs@-1")

        async with engine.connect() as conn:
            await conn.run_sync(down)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as s:
            from db.repositories import users as users_repo

            await users_repo.ensure_user(s, user_id=1, name="a")
            old = Job(command="imagine", user_id=1, model="fast", prompt="p", seed=1,
                      params={"model": "fast", "prompt": "p", "task": "img2img", "init_image": UPLOAD})
            s.add(old)
        async with engine.connect() as conn:
            await conn.run_sync(_run_upgrade, alembic_config(), "heads")
        service = JobService(sessions, ModelRegistry.load(_toml(tmp_path)))
        request = await service.claim("main/cpu#0")
        assert request is not None and request.init_image == UPLOAD
        assert "init_image" not in (await service.get_job(request.job_id)).params  # type: ignore[union-attr]
    finally:
        await engine.dispose()


def _toml(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "models.toml"
    path.write_text(TOML)
    return path
