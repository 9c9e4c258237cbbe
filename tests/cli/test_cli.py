"""The `atelier` command line and settings, as an admin meets them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.__main__ import main
from bot.settings import SettingsError, load_settings
from inference.media import read_parameters

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATELIER_") and k != "DISCORD_TOKEN"}
    env.update(extra)
    return env


def test_run_without_token_names_the_variable(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=_env(PYTHONPATH=str(ROOT)),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DISCORD_TOKEN" in lines[0], result.stderr


@pytest.mark.parametrize(("variable", "value"), [
    ("ATELIER_SYNC_GUILD", "not-a-number"),
    ("ATELIER_DEVICES", "gpu0"),
    ("ATELIER_LOG_LEVEL", "LOUD"),
    ("ATELIER_MODELS", "/no/such/models.toml"),
    ("ATELIER_DATABASE_URL", "atelier.db"),
])
def test_malformed_setting_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert variable in str(info.value) and "\n" not in str(info.value)


def test_token_is_never_in_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.super.secret")
    settings = load_settings()
    assert "super.secret" not in repr(settings) and "super.secret" not in str(settings.model_dump())
    assert settings.require_token() == "MTIz.super.secret"


def test_generate_is_deterministic_and_writes_parameters(tiny_models: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_MODELS", str(tiny_models))
    monkeypatch.setenv("ATELIER_DEVICES", "cpu")
    monkeypatch.setenv("ATELIER_MODERATION_SEMANTIC", "false")
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    for out in (first, second):
        assert main(["generate", "a lighthouse at dusk", "--seed", "7", "-q", "-o", str(out)]) == 0
    params = read_parameters(first.read_bytes())
    assert params.startswith("a lighthouse at dusk") and "Seed: 7" in params
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second)))


def test_generate_refuses_with_the_reason(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_MODELS", str(tiny_models))
    monkeypatch.setenv("ATELIER_MODERATION_SEMANTIC", "false")
    assert main(["generate", "explicit sex scene", "-o", str(tmp_path / "x.png")]) == 2
    assert "sexual" in capsys.readouterr().err
    assert main(["generate", "a cat", "--steps", "0", "-o", str(tmp_path / "x.png")]) == 2
    assert "Steps must be 1-50" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_db_upgrade_and_models_list(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "upgrade"]) == 0  # idempotent
    assert (tmp_path / "x.db").exists()
    monkeypatch.setenv("ATELIER_MODELS", str(tiny_models))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny-sd15" in out and "tiny-sdxl-lightning" in out
