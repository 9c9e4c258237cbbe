"""Expected faults at start-up (database or Redis unreachable) are one line naming the setting, no traceback,
no password."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.__main__ import main

SECRET = "s3cret-pw"


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert SECRET not in err[0] and "Traceback" not in err[0]
    return err[0]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("ATELIER_REDIS_URL", "ATELIER_MODELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISCORD_TOKEN", "fake.bot.token")
    monkeypatch.setenv("ATELIER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")


def test_an_unreachable_database_names_ATELIER_DATABASE_URL(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_DATABASE_URL", f"postgresql+asyncpg://atelier:{SECRET}@127.0.0.1:9/atelier")
    assert main(["run"]) == 2
    line = _one_line(capsys)
    assert line.startswith("error: cannot reach the database in ATELIER_DATABASE_URL "
                           "(postgresql+asyncpg://atelier:***@127.0.0.1:9/atelier): ")
    assert main(["db", "upgrade"]) == 2
    assert "ATELIER_DATABASE_URL" in _one_line(capsys)


def test_an_unreachable_redis_names_ATELIER_REDIS_URL(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_REDIS_URL", f"redis://:{SECRET}@127.0.0.1:9/0")
    assert main(["run"]) == 2
    assert _one_line(capsys).startswith("error: cannot reach Redis in ATELIER_REDIS_URL (redis://:***@127.0.0.1:9/0): ")
    assert main(["worker", "--devices", "cpu"]) == 2
    assert _one_line(capsys).startswith("error: cannot reach Redis in ATELIER_REDIS_URL (redis://:***@127.0.0.1:9/0): ")
