"""Job and case ids are never reused after deletion (issue 14, item 8)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import delete

from db import migrate
from db.engine import create_engine, create_sessionmaker
from db.models import Job, Output
from db.models_moderation import ModerationCase
from db.repositories import jobs as jobs_repo
from db.repositories import users as users_repo


def _job() -> Job:
    return Job(command="imagine", user_id=1, model="m", prompt="a cat", seed=1, params={"model": "m"})


async def _new_job(sessions) -> int:  # type: ignore[no-untyped-def]
    async with sessions.begin() as s:
        await users_repo.ensure_user(s, user_id=1, name="a")
        return (await jobs_repo.create_job(s, job=_job())).id  # type: ignore[return-value]


async def test_a_deleted_jobs_id_is_never_given_to_a_new_job(sessions) -> None:  # type: ignore[no-untyped-def]
    first = await _new_job(sessions)
    newest = await _new_job(sessions)
    async with sessions.begin() as s:
        await s.execute(delete(Job).where(Job.id == newest))
    assert await _new_job(sessions) > newest > first
    async with sessions.begin() as s:
        case = ModerationCase(user_id=1, action="warn", categories=[])
        s.add(case)
        await s.flush()
        old_case = case.id
        await s.execute(delete(ModerationCase).where(ModerationCase.id == old_case))
    async with sessions.begin() as s:
        case = ModerationCase(user_id=1, action="warn", categories=[])
        s.add(case)
        await s.flush()
        assert case.id > old_case  # type: ignore[operator]


async def test_the_migration_keeps_an_existing_sqlite_databases_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(engine, "heads")
        async with engine.connect() as conn:  # back to the old table shape, as databases before this change
            await conn.run_sync(lambda c: _downgrade(c))
        sessions = create_sessionmaker(engine)
        ids = [await _new_job(sessions) for _ in range(3)]
        async with sessions.begin() as s:
            s.add(Output(job_id=ids[0], seed=1, width=1, height=1, data=b"png"))
        assert "AUTOINCREMENT" not in _sql(path, "jobs")
        await migrate.upgrade(engine)
        assert "AUTOINCREMENT" in _sql(path, "jobs") and "AUTOINCREMENT" in _sql(path, "moderation_cases")
        assert {"ix_jobs_status_id", "ix_jobs_user_status", "ix_cases_guild_id"} <= _indexes(path)
        async with sessions() as s:
            assert [o.data for o in await jobs_repo.get_outputs(s, job_id=ids[0])] == [b"png"]  # outputs kept
        async with sessions.begin() as s:
            await s.execute(delete(Job).where(Job.id == ids[2]))
        assert await _new_job(sessions) > ids[2]
    finally:
        await engine.dispose()


def _downgrade(connection) -> None:  # type: ignore[no-untyped-def]
    from alembic import command

    from db.migrate import _sqlite_foreign_keys, alembic_config

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    _sqlite_foreign_keys(connection, False)
    with connection.begin():
        command.downgrade(cfg, "job_ids@-1")
    _sqlite_foreign_keys(connection, True)


def _sql(path: Path, table: str) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
