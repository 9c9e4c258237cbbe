"""SQLite statements make one trip to aiosqlite's thread each, and behave as on the stock adapter."""

from __future__ import annotations

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from db import sqlite as db_sqlite
from db.engine import create_engine
from db.sqlite import OneTripConnection

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", String, unique=True))


@pytest.fixture
async def engine(tmp_path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'trips.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def _trips(conn: AsyncConnection, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the functions queued on this connection's aiosqlite thread from now on."""
    raw = await conn.get_raw_connection()
    driver = raw.dbapi_connection._connection
    queued: list[str] = []
    execute = driver._execute

    async def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        queued.append(getattr(fn, "__name__", repr(fn)))
        return await execute(fn, *args, **kwargs)

    monkeypatch.setattr(driver, "_execute", counted)
    return queued


async def test_each_statement_is_one_trip_with_its_results(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        await conn.begin()  # BEGIN IMMEDIATE (db/engine.py) and later COMMIT are trips of their own
        raw = await conn.get_raw_connection()
        assert isinstance(raw.dbapi_connection, OneTripConnection)
        trips = await _trips(conn, monkeypatch)
        inserted = await conn.execute(insert(notes).values(body="first"))
        assert inserted.inserted_primary_key == (1,) and len(trips) == 1  # lastrowid came back with it
        await conn.execute(insert(notes), [{"body": "second"}, {"body": "third"}])  # executemany
        assert len(trips) == 2
        rows = (await conn.execute(select(notes.c.id, notes.c.body).order_by(notes.c.id))).all()
        assert [tuple(r) for r in rows] == [(1, "first"), (2, "second"), (3, "third")] and len(trips) == 3
        changed = await conn.execute(update(notes).where(notes.c.id > 1).values(body=notes.c.body + "!"))
        assert changed.rowcount == 2 and len(trips) == 4
        returned = (await conn.execute(update(notes).where(notes.c.id == 1).values(body="one")
                                       .returning(notes.c.body))).scalar_one()
        assert returned == "one" and len(trips) == 5
        assert (await conn.execute(select(notes.c.id).where(notes.c.id == 99))).first() is None
        assert len(trips) == 6
        await conn.commit()


async def test_errors_are_sqlalchemys_and_the_connection_goes_on(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        await conn.execute(insert(notes).values(body="same"))
        with pytest.raises(IntegrityError, match="UNIQUE"):
            await conn.execute(insert(notes).values(body="same"))
        await conn.rollback()
        with pytest.raises(OperationalError, match="syntax"):
            await conn.execute(text("SELEKT 1"))
        await conn.rollback()
        assert (await conn.execute(select(notes.c.body))).all() == []  # the first insert was rolled back
        await conn.execute(insert(notes).values(body="kept"))
        await conn.commit()
    async with engine.connect() as conn:
        assert (await conn.execute(select(notes.c.body))).scalars().all() == ["kept"]


async def test_streamed_results_still_use_server_side_cursors(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(insert(notes), [{"body": f"n{i}"} for i in range(250)])
    async with engine.connect() as conn:
        result = await conn.stream(select(notes.c.body).order_by(notes.c.id))
        bodies = [row.body async for row in result]
    assert len(bodies) == 250 and bodies[0] == "n0" and bodies[-1] == "n249"


async def test_without_the_aiosqlite_internals_the_stock_adapter_is_used(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delattr(aiosqlite.Connection, "_execute")
    assert db_sqlite.one_trip_dbapi() is None
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'stock.db'}")  # connects lazily, below
    monkeypatch.undo()  # the stock adapter needs _execute itself
    try:
        async with engine.connect() as conn:
            await conn.begin()
            raw = await conn.get_raw_connection()
            assert not isinstance(raw.dbapi_connection, OneTripConnection)
            trips = await _trips(conn, monkeypatch)
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
            assert len(trips) >= 3  # what one-trip saves: cursor, execute, fetch (and close) each go
            await conn.rollback()
    finally:
        await engine.dispose()


async def test_a_transaction_is_begin_statement_and_end_with_no_extra_rollback(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from db.engine import create_sessionmaker

    async with engine.connect() as conn:  # the pool keeps this connection for the sessions below
        raw = await conn.get_raw_connection()
        driver = raw.dbapi_connection._connection
    queued: list[str] = []
    execute = driver._execute

    async def counted(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        queued.append(getattr(fn, "__name__", "statement"))
        return await execute(fn, *args, **kwargs)

    monkeypatch.setattr(driver, "_execute", counted)
    async with create_sessionmaker(engine).begin() as session:
        await session.execute(insert(notes).values(body="written"))
    assert queued == ["<lambda>", "<lambda>", "commit"]  # BEGIN IMMEDIATE, INSERT, COMMIT
    queued.clear()
    async with create_sessionmaker(engine, readonly=True)() as session:
        assert (await session.execute(select(notes.c.body))).scalar_one() == "written"
    assert queued == ["<lambda>", "<lambda>", "rollback"]  # BEGIN, SELECT, ROLLBACK
    queued.clear()
    with pytest.raises(IntegrityError):
        async with create_sessionmaker(engine).begin() as session:
            await session.execute(insert(notes).values(body="more"))
            await session.execute(insert(notes).values(body="written"))  # not unique: all of it undone
    assert queued[-1] == "rollback"
    async with engine.connect() as conn:
        assert (await conn.execute(select(notes.c.body))).scalars().all() == ["written"]
