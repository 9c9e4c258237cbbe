"""Async engine and session factory: SQLite (3.35 or later) by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from db.sqlite import one_trip_dbapi

log = logging.getLogger(__name__)

# UPDATE/INSERT ... RETURNING: a claim, a completion, a reservation and a charge are each one
# statement that changes a row and hands it back.
MIN_SQLITE = (3, 35, 0)


class UnsupportedDatabase(RuntimeError):
    """The database lacks what the data layer relies on (raised when its engine is created)."""


def require_supported(dialect: str) -> None:
    """Refuse a database the data layer cannot run on: anything but PostgreSQL or SQLite 3.35+."""
    if dialect == "postgresql":
        return
    sqlite_version = sqlite3.sqlite_version_info
    minimum = ".".join(map(str, MIN_SQLITE))
    if dialect != "sqlite":
        raise UnsupportedDatabase(f"Atelier runs on SQLite {minimum} or later or on PostgreSQL, not {dialect}")
    if sqlite_version < MIN_SQLITE:
        found = ".".join(map(str, sqlite_version))
        raise UnsupportedDatabase(
            f"SQLite {found} is too old: Atelier needs SQLite {minimum} or later (UPDATE ... RETURNING). "
            "Use a Python built with a newer SQLite, or PostgreSQL")


# How long a writer waits for SQLite's write lock (busy_timeout) before "database is locked".
BUSY_SECONDS = 10.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while a writer commits; foreign keys are off by default in SQLite;
    # busy_timeout makes concurrent writers wait instead of failing with "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    # Let SQLAlchemy's "begin" hook below issue BEGIN itself (pysqlite's own BEGIN is deferred).
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead
    # of one failing with "database is locked" when it upgrades a read transaction. Read-only
    # sessions (create_sessionmaker(readonly=True)) begin deferred: under WAL they never wait for
    # a writer, which keeps checks made before acknowledging an interaction fast.
    if conn.get_execution_options().get("atelier_readonly"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def normalise_url(url: str) -> str:
    """Accept plain URLs from admins and pick the async driver for them."""
    if url.startswith("sqlite:///") or url.startswith("sqlite://"):
        return "sqlite+aiosqlite" + url[len("sqlite"):]
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    return url


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = normalise_url(url)
    if url.startswith("sqlite+aiosqlite:") and "module" not in kwargs:
        kwargs["module"] = one_trip_dbapi()  # one trip to the database thread a statement (db/sqlite.py)
    engine = create_async_engine(url, **kwargs)
    require_supported(engine.dialect.name)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    return engine


def upsert_insert(dialect: str) -> Any:
    """The INSERT construct with ``on_conflict_do_*`` for a dialect (PostgreSQL's, else SQLite's:
    the two databases Atelier runs on)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def create_sessionmaker(engine: AsyncEngine, *, readonly: bool = False) -> async_sessionmaker[AsyncSession]:
    """Sessions for the data layer; readonly=True for lookups that never write (see _sqlite_begin).

    On SQLite, ``begin()`` of a writing sessionmaker waits for its turn in this process (TurnTakingSessions)."""
    if readonly:
        engine = engine.execution_options(atelier_readonly=True)
    elif engine.dialect.name == "sqlite":
        return TurnTakingSessions(engine, expire_on_commit=False)
    return async_sessionmaker(engine, expire_on_commit=False)


# How long a write transaction may wait for its turn: as long as SQLite's busy_timeout lets it wait.
TURN_TIMEOUT = BUSY_SECONDS


class TurnTakingSessions(async_sessionmaker[AsyncSession]):
    """``begin()`` takes a first-come, first-served turn at SQLite's single write lock.

    Without it, writers that find the lock taken wait in SQLite's busy handler, which polls with
    growing sleeps (1, 2, 5, 10 ... 100 ms) and in no particular order: in a burst of submissions,
    each commit could be followed by a sleep in which nobody wrote. Queued here, the
    next writer starts as soon as the last one commits. ``begin(urgent=True)`` (see ``begin_urgent``)
    goes ahead of the queue: a worker claiming its next job must not wait behind a burst of
    submissions while its device idles. Other processes on the same file (the CLI) still meet
    busy_timeout; several bot processes should share PostgreSQL instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()

    def begin(self, *, urgent: bool = False) -> Any:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = _Turns()
        return _InTurn(turns, urgent, super().begin())


def begin_urgent(sessions: async_sessionmaker[AsyncSession]) -> Any:
    """A write transaction that goes ahead of others waiting in this process (SQLite; elsewhere plain)."""
    if isinstance(sessions, TurnTakingSessions):
        return sessions.begin(urgent=True)
    return sessions.begin()


class _Turns:
    """One writer at a time; urgent waiters first, then the rest in arrival order."""

    def __init__(self) -> None:
        self.held = False
        self.waiting: tuple[collections.deque[asyncio.Future[None]], ...] = (collections.deque(), collections.deque())

    async def acquire(self, urgent: bool) -> None:
        if not self.held and not any(self.waiting):
            self.held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self.waiting[0 if urgent else 1]
        queue.append(turn)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the turn just as the wait was given up: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(turn)
            raise

    def release(self) -> None:
        for queue in self.waiting:
            while queue:
                turn = queue.popleft()
                if not turn.done():
                    turn.set_result(None)  # handed over: still held
                    return
        self.held = False


class _InTurn:
    def __init__(self, turns: _Turns, urgent: bool, transaction: Any) -> None:
        self.turns, self.urgent, self.transaction = turns, urgent, transaction

    async def __aenter__(self) -> AsyncSession:
        try:
            async with asyncio.timeout(TURN_TIMEOUT):
                await self.turns.acquire(self.urgent)
        except TimeoutError:
            raise OperationalError("BEGIN IMMEDIATE", None, Exception(
                f"database is locked: no turn to write within {TURN_TIMEOUT:g} s")) from None
        try:
            return await self.transaction.__aenter__()
        except BaseException:
            self.turns.release()
            raise

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self.transaction.__aexit__(*exc)
        finally:
            self.turns.release()
