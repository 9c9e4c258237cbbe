"""ATELIER_LORA_RANK and ATELIER_LORA_SLOTS: read and checked through Settings, and passed to every
engine by bot/engines.py (the LoRA slots of compiled UNets, inference/hotswap.py)."""

from __future__ import annotations

import pytest

from bot.engines import engine_factory, load_registry
from bot.settings import SettingsError, load_settings
from inference.limits import DEFAULT_LORA_RANK, DEFAULT_LORA_SLOTS, MAX_LORA_RANK, MAX_LORA_SLOTS


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATELIER_LORA_RANK", "ATELIER_LORA_SLOTS", "ATELIER_COMPILE"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_engines() -> None:
    from inference import hotswap

    settings = load_settings()
    assert (settings.lora_rank, settings.lora_slots) == (DEFAULT_LORA_RANK, DEFAULT_LORA_SLOTS)
    assert (hotswap.DEFAULT_RANK, hotswap.DEFAULT_SLOTS) == (DEFAULT_LORA_RANK, DEFAULT_LORA_SLOTS)


def test_the_engines_get_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_LORA_RANK", "128")
    monkeypatch.setenv("ATELIER_LORA_SLOTS", "2")
    settings = load_settings(lora_dir=tmp_path)
    engine = engine_factory(settings, load_registry(settings))("cpu")
    assert (engine.lora_rank, engine.lora_slots) == (128, 2)
    monkeypatch.setenv("ATELIER_LORA_SLOTS", "0")  # no slots: every LoRA loads as its own adapter
    settings = load_settings(lora_dir=tmp_path)
    engine = engine_factory(settings, load_registry(settings))("cpu")
    assert engine.lora_slots == 0


@pytest.mark.parametrize(("name", "value"), [
    ("ATELIER_LORA_RANK", "0"), ("ATELIER_LORA_RANK", str(MAX_LORA_RANK + 1)), ("ATELIER_LORA_RANK", "big"),
    ("ATELIER_LORA_SLOTS", "-1"), ("ATELIER_LORA_SLOTS", str(MAX_LORA_SLOTS + 1)), ("ATELIER_LORA_SLOTS", "1.5"),
])
def test_a_bad_value_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"Invalid setting {name}: "):
        load_settings()
