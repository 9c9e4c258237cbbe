"""ATELIER_UVLOOP: read through Settings, and `atelier run` picks its event loop from it."""

from __future__ import annotations

import pytest

from bot.__main__ import _loop_factory
from bot.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATELIER_UVLOOP", raising=False)


def test_uvloop_by_default() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert load_settings().uvloop
    assert _loop_factory(load_settings().uvloop) is uvloop.new_event_loop


@pytest.mark.parametrize("value", ["0", "false", "off"])
def test_turned_off_keeps_asyncios_loop(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ATELIER_UVLOOP", value)
    settings = load_settings()
    assert not settings.uvloop
    assert _loop_factory(settings.uvloop) is None


def test_a_value_that_is_no_boolean_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_UVLOOP", "sometimes")
    with pytest.raises(SettingsError, match="ATELIER_UVLOOP"):
        load_settings()
