"""Database fixtures: every db test runs on SQLite and on PostgreSQL (skipped, with the reason, when absent)."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from db import migrate
from db.engine import create_engine, create_sessionmaker

POSTGRES_URL = os.environ.get("ATELIER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


async def _postgres_engine():  # type: ignore[no-untyped-def]
    """A fresh schema per test inside the shared test database, so tests never see each other's rows."""
    try:
        import asyncpg
    except ImportError:
        pytest.skip("asyncpg is not installed (pip install -e '.[dev]')")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    dsn = POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL server at {POSTGRES_URL} ({exc.__class__.__name__}); set ATELIER_TEST_POSTGRES_URL")
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    await conn.close()
    engine = create_engine(POSTGRES_URL, connect_args={"server_settings": {"search_path": schema}})
    return engine, schema, dsn


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_engine(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
        await migrate.upgrade(engine)
        yield engine
        await engine.dispose()
        return
    engine, schema, dsn = await _postgres_engine()
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()
    import asyncpg

    conn = await asyncpg.connect(dsn)
    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await conn.close()


@pytest.fixture
def sessions(db_engine):  # type: ignore[no-untyped-def]
    return create_sessionmaker(db_engine)


@contextlib.contextmanager
def statements_sent(sessions) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The SQL statements ``sessions`` sends meanwhile (transaction control left out)."""
    statements: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(" ".join(statement.split()))

    bind = sessions.kw["bind"].sync_engine
    event.listen(bind, "before_cursor_execute", note)
    try:
        yield statements
    finally:
        event.remove(bind, "before_cursor_execute", note)
