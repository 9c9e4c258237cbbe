"""Apply Alembic migrations programmatically (at start-up and from `atelier db upgrade`)."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    """Bring the schema to `revision` over the engine's own connection (works for SQLite and PostgreSQL).

    "heads": features add their own revision branches off the initial schema; all are applied."""
    cfg = alembic_config()

    def _upgrade(connection) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
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
