"""ATELIER_SHARD_COUNT / ATELIER_SHARD_IDS: parsed, validated, and refused in one line naming the variable."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATELIER_SHARD_COUNT", "ATELIER_SHARD_IDS"):
        monkeypatch.delenv(name, raising=False)


def test_unset_runs_every_shard_discord_recommends() -> None:
    settings = load_settings()
    assert settings.shard_count is None and settings.shard_id_list is None and settings.runs_shard_zero


def test_shard_ids_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_SHARD_COUNT", "4")
    monkeypatch.setenv("ATELIER_SHARD_IDS", " 2, 3")
    settings = load_settings()
    assert settings.shard_count == 4 and settings.shard_id_list == [2, 3] and not settings.runs_shard_zero
    assert load_settings(shard_count=4, shard_ids="0,1").runs_shard_zero


def test_blank_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_SHARD_COUNT", "")
    monkeypatch.setenv("ATELIER_SHARD_IDS", "")
    settings = load_settings()
    assert settings.shard_count is None and settings.shard_id_list is None


@pytest.mark.parametrize(("env", "variable", "words"), [
    ({"ATELIER_SHARD_COUNT": "0"}, "ATELIER_SHARD_COUNT", "greater than or equal to 1"),
    ({"ATELIER_SHARD_COUNT": "two"}, "ATELIER_SHARD_COUNT", "integer"),
    ({"ATELIER_SHARD_IDS": "0,1"}, "ATELIER_SHARD_IDS", "ATELIER_SHARD_COUNT"),
    ({"ATELIER_SHARD_COUNT": "2", "ATELIER_SHARD_IDS": "0,2"}, "ATELIER_SHARD_IDS", "from 0 to 1"),
    ({"ATELIER_SHARD_COUNT": "2", "ATELIER_SHARD_IDS": "1,1"}, "ATELIER_SHARD_IDS", "twice"),
    ({"ATELIER_SHARD_COUNT": "2", "ATELIER_SHARD_IDS": "0;1"}, "ATELIER_SHARD_IDS", "comma-separated"),
    ({"ATELIER_SHARD_COUNT": "2", "ATELIER_SHARD_IDS": "-1"}, "ATELIER_SHARD_IDS", "comma-separated"),
])
def test_malformed_shard_settings_are_one_line_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, words: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"Invalid setting {variable}:") and words in message and "\n" not in message


def test_the_process_name_is_stable_distinct_and_short() -> None:
    from bot.settings import load_settings

    assert load_settings(discord_token="x").instance == "main"
    assert load_settings(discord_token="x", shard_count=4, shard_ids="0,1").instance == "shards-0-1"
    assert load_settings(discord_token="x", shard_count=4, shard_ids="2,3").instance == "shards-2-3"
    many = load_settings(discord_token="x", shard_count=100, shard_ids=",".join(map(str, range(0, 60, 2)))).instance
    assert many.startswith("shards-0-58-") and len(many) <= 40
