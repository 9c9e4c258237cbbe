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


def test_generate_with_single_file_checkpoints(single_file_models: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_MODELS", str(single_file_models))
    monkeypatch.setenv("ATELIER_DEVICES", "cpu")
    monkeypatch.setenv("ATELIER_MODERATION_SEMANTIC", "false")
    for model in ("tiny-sd15-file", "tiny-pony"):
        out = tmp_path / f"{model}.png"
        assert main(["generate", "a lighthouse", "--model", model, "--steps", "2", "--seed", "3", "-q",
                     "-o", str(out)]) == 0
        params = read_parameters(out.read_bytes())
        assert f"Model: {model}" in params and "Model hash: " in params


def test_models_list_shows_the_models_dir_and_the_packaged_models(single_file_models: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import shutil

    shutil.copy(single_file_models.parent / "checkpoints" / "pony" / "tiny-pony.safetensors",
                tmp_path / "illustrious-v1.safetensors")
    (tmp_path / "old.ckpt").write_bytes(b"pickle")
    (tmp_path / "user.toml").write_text('[models.sdxl-turbo]\ndisabled = true\n', encoding="utf-8")
    monkeypatch.setenv("ATELIER_MODELS", str(tmp_path / "user.toml"))
    monkeypatch.setenv("ATELIER_MODELS_DIR", str(tmp_path))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    lines = {line[2:].split()[0]: line[2:].split()[1] for line in out.splitlines() if line.strip()}
    assert lines["illustrious-v1"] == "sdxl" and lines["sd15"] == "sd15" and "sdxl-turbo" not in lines
    assert "old" not in lines
    monkeypatch.setenv("ATELIER_PRELOAD", "no-such-model")
    assert main(["models", "list"]) == 2
    assert "ATELIER_PRELOAD names 'no-such-model'" in capsys.readouterr().err


@pytest.mark.parametrize(("variable", "value"), [("ATELIER_VRAM_BUDGET", "lots"), ("ATELIER_RAM_BUDGET", "12"),
                                                 ("ATELIER_MODELS_DIR", "/no/such/folder")])
def test_memory_and_folder_settings_are_checked(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_budget_sizes_accept_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_VRAM_BUDGET", "60GB")
    monkeypatch.setenv("ATELIER_RAM_BUDGET", "512 MiB")
    settings = load_settings()
    assert (settings.vram_budget, settings.ram_budget) == (60 * 10**9, 512 * 2**20)
