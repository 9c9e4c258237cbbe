"""`atelier doctor` against a fake hub: a table of what blocks and what merely could be better."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.__main__ import main
from tests.fakehub import FakeHub, repo_from, serving, use_hub

REPO, GATED = "atelier-test/tiny-sd15", "atelier-test/gated-sd15"


@pytest.fixture
def host(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake_hub = FakeHub()
    fake_hub.add(REPO, repo_from(tiny_models.parent / "tiny-sd15", tmp_path / "repo"))
    fake_hub.add(GATED, tmp_path / "repo")
    fake_hub.gated.add(GATED)
    models = tmp_path / "models.toml"
    models.write_text(f"""default = "hub-sd15"
[models.hub-sd15]
kind = "sd15"
source = "{REPO}"
[models.gated]
kind = "sd15"
source = "{GATED}"
[models.gone]
kind = "sd15"
source = "{tmp_path / 'no-such-folder'}"
""", encoding="utf-8")
    for name in ("DISCORD_TOKEN", "ATELIER_REDIS_URL", "ATELIER_DEVICES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ATELIER_MODELS", str(models))
    monkeypatch.setenv("ATELIER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'a.db'}")
    with serving(fake_hub):
        use_hub(monkeypatch, fake_hub, tmp_path / "hf-cache")
        yield fake_hub


def _rows(out: str) -> dict[str, tuple[str, str]]:
    lines = out.strip().splitlines()
    assert lines[0].split() == ["CHECK", "STATUS", "DETAIL"]
    start = lines[0].index("STATUS")
    return {line[:start].strip(): (line[start:start + 6].strip(), line[start + 8:]) for line in lines[1:]}


def test_doctor_reports_each_model_and_service_and_fails_on_what_blocks(host: FakeHub, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_REDIS_URL", "redis://:pw@127.0.0.1:9/0")
    assert main(["doctor"]) == 1
    rows = _rows(capsys.readouterr().out)
    assert rows["torch"][0] == "ok" and "build" in rows["torch"][1]
    assert rows["model hub-sd15 (default)"][0] == "warn" and "GB to download on first use" in rows["model hub-sd15 (default)"][1]
    assert rows["model gated"] == ("warn", f"gated: accept the licence at {host.url}/{GATED} and set HF_TOKEN")
    assert rows["model gone"][0] == "warn" and rows["model gone"][1].startswith("bad: ")
    assert rows["redis"][0] == "FAIL" and "ATELIER_REDIS_URL" in rows["redis"][1] and "pw" not in rows["redis"][1]
    assert rows["discord token"][0] == "FAIL"
    assert "database" in rows and "model cache disk" in rows and "ffmpeg" in rows and "hub token" in rows
    assert not host.downloads() or all(p.endswith("model_index.json") for p in host.downloads())  # nothing pulled


def test_doctor_passes_when_nothing_blocks(host: FakeHub, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DISCORD_TOKEN", "fake.bot.token")
    assert main(["db", "upgrade"]) == 0
    assert main(["models", "pull"]) == 0
    capsys.readouterr()
    assert main(["doctor"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["model hub-sd15 (default)"] == ("ok", "cached")
    assert rows["database"] == ("ok", "reachable, migrated") and rows["discord token"][0] == "ok"
    assert "fake.bot.token" not in str(rows)


def test_gpus_are_listed_with_their_memory_and_missing_ones_block(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import doctor
    from inference import telemetry

    monkeypatch.setattr(telemetry, "torch_build", lambda: ("2.13.0+cu128", "12.8", [("NVIDIA H100 80GB HBM3", 85 * 2**30)]))
    checks, device = doctor.torch_checks(None)
    assert [(c.name, c.status, c.detail) for c in checks] == [
        ("torch", "ok", "2.13.0+cu128, CUDA 12.8 build"), ("cuda:0", "ok", "NVIDIA H100 80GB HBM3, 85.0 GiB")]
    assert device == "cuda:0"  # models are checked for the fp16 files a GPU downloads
    monkeypatch.setattr(telemetry, "torch_build", lambda: ("2.13.0+cpu", None, []))
    checks, device = doctor.torch_checks(["cuda:1"])
    assert checks[-1].status == "FAIL" and "cuda:1" in checks[-1].detail
