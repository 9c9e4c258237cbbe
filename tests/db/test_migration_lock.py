"""Several processes starting together migrate one after another (issue 14, item 14)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect, text

from db import migrate
from db.engine import create_engine
from tests.db.conftest import POSTGRES_URL, _postgres_engine


async def test_concurrent_upgrades_of_a_fresh_postgresql_schema_take_turns() -> None:
    first, schema, dsn = await _postgres_engine()
    engines = [first] + [create_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
                         for _ in range(2)]
    try:
        await asyncio.gather(*(migrate.upgrade(engine) for engine in engines))  # none fails on a duplicate table
        async with first.connect() as conn:
            names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            heads = (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one()
        assert {"jobs", "outputs", "alembic_version"} <= names and heads >= 1
    finally:
        for engine in engines:
            await engine.dispose()
        import asyncpg

        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def test_the_upgrade_takes_the_advisory_lock(db_engine) -> None:  # type: ignore[no-untyped-def]
    if db_engine.dialect.name != "postgresql":
        pytest.skip("advisory locks are PostgreSQL's; SQLite's BEGIN IMMEDIATE serialises upgrades")
    seen: list[str] = []
    from sqlalchemy import event

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db_engine.sync_engine, "before_cursor_execute", note)
    try:
        await migrate.upgrade(db_engine)
    finally:
        event.remove(db_engine.sync_engine, "before_cursor_execute", note)
    assert any("pg_advisory_xact_lock" in s for s in seen)
