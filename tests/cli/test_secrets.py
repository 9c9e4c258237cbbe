"""Secrets stay out of reprs, argv and logs (issue 14, item 9)."""

from __future__ import annotations

import pytest

from bot.__main__ import main
from bot.settings import load_settings

PASSWORD = "pg-hunter2-secret"


def test_the_database_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://atelier:{PASSWORD}@db.example:5432/atelier"
    monkeypatch.setenv("ATELIER_DATABASE_URL", url)
    settings = load_settings()
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)
    assert PASSWORD not in str(settings.model_dump())
    assert settings.database == url  # the engine still gets it


def test_a_malformed_database_url_is_named_but_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_DATABASE_URL", f"atelier:{PASSWORD}")
    with pytest.raises(Exception) as caught:
        load_settings()
    assert "ATELIER_DATABASE_URL" in str(caught.value) and PASSWORD not in str(caught.value)


def test_the_worker_takes_its_redis_url_from_the_environment_only(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("ATELIER_REDIS_URL", raising=False)
    assert main(["worker", "--devices", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "ATELIER_REDIS_URL is not set" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("ATELIER_REDIS_URL", "redis://127.0.0.1:1/0")
    assert main(["worker", "--redis", f"redis://:{PASSWORD}@h:6379/0", "--devices", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "ATELIER_REDIS_URL" in err and "--redis" in err and PASSWORD not in err


@pytest.mark.parametrize("url", [
    f"postgresql+asyncpg://127.0.0.1:9/atelier?password={PASSWORD}",
    f"postgresql+asyncpg://atelier@127.0.0.1:9/atelier?sslmode=disable&PASSWORD={PASSWORD}",
    f"postgresql+asyncpg://atelier:{PASSWORD}@127.0.0.1:port/atelier",
])
def test_database_errors_never_show_a_password(url: str) -> None:
    """`atelier run` and `atelier doctor` print these errors: a password given as a query
    parameter, or in a URL whose port is not a number, must not be in them."""
    import asyncio

    from bot.startup import StartupError, check_database

    with pytest.raises(StartupError) as caught:
        asyncio.run(check_database(url))
    assert PASSWORD not in str(caught.value) and "ATELIER_DATABASE_URL" in str(caught.value)


def test_redis_errors_never_show_a_query_password() -> None:
    import asyncio

    from bot.startup import StartupError, check_redis

    with pytest.raises(StartupError) as caught:
        asyncio.run(check_redis(f"redis://127.0.0.1:9/0?password={PASSWORD}"))
    assert PASSWORD not in str(caught.value) and "password=***" in str(caught.value)
