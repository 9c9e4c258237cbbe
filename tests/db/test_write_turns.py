"""SQLite write transactions take turns in this process: in arrival order, a worker's claim first."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from db import engine as db_engine_module
from db.engine import TurnTakingSessions, begin_urgent, create_engine, create_sessionmaker


@pytest.fixture
async def writes(tmp_path):  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'turns.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE log (who TEXT)"))
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _write(sessions, who: str, order: list[str], hold: asyncio.Event | None = None,
                 urgent: bool = False) -> None:  # type: ignore[no-untyped-def]
    async with (begin_urgent(sessions) if urgent else sessions.begin()) as session:
        order.append(who)
        await session.execute(text("INSERT INTO log VALUES (:who)"), {"who": who})
        if hold is not None:
            await hold.wait()


async def test_writers_go_in_arrival_order_and_urgent_ones_first(writes) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(writes, TurnTakingSessions)
    order: list[str] = []
    hold = asyncio.Event()
    first = asyncio.ensure_future(_write(writes, "first", order, hold))
    await asyncio.sleep(0.05)
    rest = [asyncio.ensure_future(_write(writes, f"submit{n}", order)) for n in range(3)]
    await asyncio.sleep(0.01)
    claim = asyncio.ensure_future(_write(writes, "claim", order, urgent=True))
    await asyncio.sleep(0.05)
    assert order == ["first"]  # everyone else waits for the turn, not in SQLite's busy handler
    hold.set()
    await asyncio.gather(first, claim, *rest)
    assert order == ["first", "claim", "submit0", "submit1", "submit2"]
    async with writes() as session:
        assert (await session.execute(text("SELECT count(*) FROM log"))).scalar() == 5


async def test_a_failed_or_abandoned_writer_passes_the_turn_on(writes) -> None:  # type: ignore[no-untyped-def]
    order: list[str] = []
    with pytest.raises(ZeroDivisionError):
        async with writes.begin():
            1 / 0  # noqa: B018
    hold = asyncio.Event()
    first = asyncio.ensure_future(_write(writes, "first", order, hold))
    await asyncio.sleep(0.05)
    gives_up = asyncio.ensure_future(_write(writes, "gives up", order))
    then = asyncio.ensure_future(_write(writes, "then", order))
    await asyncio.sleep(0.01)
    gives_up.cancel()
    hold.set()
    await asyncio.gather(first, then)
    assert order == ["first", "then"]


async def test_no_turn_within_the_timeout_is_sqlites_locked_error(writes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(db_engine_module, "TURN_TIMEOUT", 0.1)
    hold = asyncio.Event()
    first = asyncio.ensure_future(_write(writes, "first", [], hold))
    await asyncio.sleep(0.05)
    with pytest.raises(OperationalError, match="database is locked"):
        await _write(writes, "late", [])
    hold.set()
    await first
    await _write(writes, "after", [])  # the turn was not lost
