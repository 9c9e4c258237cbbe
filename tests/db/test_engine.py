"""db.engine refuses, when the engine is created, a database the data layer cannot run on."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from bot.startup import StartupError, check_database
from db.engine import UnsupportedDatabase, create_engine, require_supported


@pytest.mark.parametrize("version", [(3, 34, 1), (3, 8, 11)])
def test_an_sqlite_without_returning_is_refused_at_start_up(tmp_path, monkeypatch, version) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sqlite3, "sqlite_version_info", version)
    url = f"sqlite:///{tmp_path / 'atelier.db'}"
    with pytest.raises(UnsupportedDatabase, match=r"SQLite 3\.\d+\.\d+ is too old: Atelier needs SQLite 3\.35\.0"):
        create_engine(url)
    with pytest.raises(StartupError, match="is too old") as caught:  # what `atelier run` prints
        asyncio.run(check_database(url))
    assert "UPDATE ... RETURNING" in str(caught.value)
    assert not (tmp_path / "atelier.db").exists()


async def test_sqlite_335_and_later_is_accepted(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 35, 0))
    engine = create_engine(f"sqlite:///{tmp_path / 'atelier.db'}")
    await engine.dispose()


def test_a_database_other_than_sqlite_or_postgresql_is_refused() -> None:
    with pytest.raises(UnsupportedDatabase, match=r"SQLite 3\.35\.0 or later or on PostgreSQL, not mysql"):
        require_supported("mysql")
    require_supported("postgresql")
