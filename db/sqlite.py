"""SQLite under asyncio with one trip to the database thread a statement.

SQLAlchemy's aiosqlite adapter goes to aiosqlite's thread four times for every statement: to open
a cursor, to execute, to fetch the rows and to close the cursor. Each trip is a queue put, a thread
wake-up and a ``call_soon_threadsafe`` back to the loop, with the GIL changing hands both ways. On
a machine whose cores are busy with a pipeline those trips are most of what a statement costs the
bot (``tests/db/test_sqlite.py`` counts them). The cursor here does the four in one function on that thread and hands SQLAlchemy the
rows and what it reads of a cursor afterwards (description, rowcount, lastrowid). A rollback with
no transaction open (the pool's reset of every connection handed back) makes no trip at all.

Everything else is SQLAlchemy's and aiosqlite's own: connections, transactions, server-side
cursors, exceptions (raised on the thread, translated by SQLAlchemy as before). It uses
aiosqlite's ``Connection._execute`` and ``._conn``, internals of the kind SQLAlchemy's adapter
itself relies on (it queues on ``_tx`` to set the isolation level); ``one_trip_dbapi()`` returns
None where an aiosqlite release lacks them, and the stock adapter is used.
"""

from __future__ import annotations

import collections
import logging
import sqlite3
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite

log = logging.getLogger(__name__)


class _Ran:
    """What SQLAlchemy reads of a DBAPI cursor once its statement ran (the rows go separately)."""

    __slots__ = ("arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, description: Any = None, rowcount: int = -1, lastrowid: int | None = None) -> None:
        self.description = description
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.arraysize = 1

    def close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed on the database thread."""


def _run(connection: sqlite3.Connection, operation: str, parameters: Any,
         many: bool) -> tuple[_Ran, list[Any] | None]:
    """On aiosqlite's thread: open a cursor, execute, fetch every row, close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, () if parameters is None else parameters)
        rows = cursor.fetchall() if cursor.description else None
        return _Ran(cursor.description, cursor.rowcount, cursor.lastrowid), rows
    finally:
        cursor.close()


class OneTripCursor(sa_aiosqlite.AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's buffered aiosqlite cursor, executing in one trip to the database thread."""

    __slots__ = ()
    _awaitable_cursor_close = False  # _Ran.close is plain and instant

    def _make_new_cursor(self, connection: Any) -> Any:
        return _Ran()  # no trip to open a cursor: the statement opens its own on the thread

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        await self._trip(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._trip(operation, seq_of_parameters, many=True)

    async def _trip(self, operation: Any, parameters: Any, *, many: bool) -> None:
        driver: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        async with self._adapt_connection._execute_mutex:
            ran, rows = await driver._execute(lambda: _run(driver._conn, operation, parameters, many))
        self._cursor = ran  # type: ignore[assignment]
        if rows is not None:
            self._rows = collections.deque(rows)


class OneTripConnection(sa_aiosqlite.AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor  # server-side cursors stay SQLAlchemy's (_ss_cursor_cls)

    def rollback(self) -> None:
        """Roll back on the database thread only when a transaction is open.

        The pool rolls back every connection handed back to it, after the session's own COMMIT or
        ROLLBACK too: with nothing open that is a trip to do nothing, on every transaction.
        ``in_transaction`` is SQLite's autocommit flag, read here while no statement is running
        on the connection (SQLAlchemy uses one connection from one task at a time)."""
        driver = self._connection
        if driver._connection is not None and not driver._conn.in_transaction:
            return
        super().rollback()


class OneTripDBAPI(sa_aiosqlite.AsyncAdapt_aiosqlite_dbapi):
    """The aiosqlite DBAPI shim SQLAlchemy uses, handing out OneTripConnections."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)


def one_trip_dbapi() -> OneTripDBAPI | None:
    """The shim for ``create_async_engine(..., module=...)``, or None if aiosqlite changed under it."""
    if not callable(getattr(aiosqlite.Connection, "_execute", None)) or not isinstance(
            getattr(aiosqlite.Connection, "_conn", None), property):
        log.warning("aiosqlite %s lacks Connection._execute/_conn: SQLite runs on SQLAlchemy's stock adapter",
                    getattr(aiosqlite, "__version__", "?"))
        return None
    return OneTripDBAPI(aiosqlite, sqlite3)
