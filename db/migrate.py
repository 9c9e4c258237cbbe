"""Apply Alembic migrations programmatically (at start-up and from `atelier db upgrade`).

Several bot processes (shards) may start together on one database: on PostgreSQL the upgrade runs
under a transaction-scoped advisory lock, so one process migrates while the others wait and then
find the schema current (SQLite's BEGIN IMMEDIATE already makes them take turns). On SQLite the
foreign keys are switched off around the upgrade, as Alembic's batch mode requires: a migration
that rebuilds a table drops the old copy, and with foreign keys on that drop would first delete
the rows that point at it (ON DELETE CASCADE). They are checked before the upgrade commits.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Arbitrary and fixed: every Atelier process upgrading a PostgreSQL database takes this lock.
MIGRATION_LOCK = 7461_0001


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _sqlite_foreign_keys(connection: Connection, on: bool) -> None:
    # Outside any transaction (SQLite ignores this PRAGMA inside one): straight to the DBAPI
    # connection, which runs in autocommit mode (see db.engine._sqlite_pragmas).
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _run_upgrade(connection: Connection, cfg: Config, revision: str) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys(connection, False)
    try:
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing at missing rows: {broken[:5]}")
    finally:
        if sqlite:
            _sqlite_foreign_keys(connection, True)


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the schema to `revision` over the engine's own connection (works for SQLite and PostgreSQL).

    "heads": features add their own revision branches off the initial schema; all are applied."""
    cfg = alembic_config()
    async with engine.connect() as conn:
        await conn.run_sync(_run_upgrade, cfg, revision)
    log.info("database schema at %s", revision)


async def missing_heads(engine: AsyncEngine) -> list[str]:
    """Revision heads not applied to the database yet ([] when migrated); connecting is also the check that
    the database answers (``atelier doctor`` and the start-up check use it)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())

    def _current(connection) -> set[str]:  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection)
        return {rev for head in context.get_current_heads()
                for rev in _with_ancestors(ScriptDirectory.from_config(alembic_config()), head)}

    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    return sorted(heads - current)


def _with_ancestors(script, head: str) -> set[str]:  # type: ignore[no-untyped-def]
    return {rev.revision for rev in script.iterate_revisions(head, "base")}
