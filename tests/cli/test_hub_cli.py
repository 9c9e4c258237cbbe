"""The command line against a fake hub, each run a fresh process (as an admin runs it): the first
`atelier generate` downloads and says so, the next start makes no request; `atelier models pull`."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakehub import FakeHub, hub_env, hub_registry, repo_from, serving

ROOT = Path(__file__).resolve().parents[2]
REPO = "atelier-test/tiny-sd15"


@pytest.fixture
def fake_hub(tiny_models: Path, tmp_path: Path) -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.add(REPO, repo_from(tiny_models.parent / "tiny-sd15", tmp_path / "repo"))
    with serving(hub):
        yield hub


def _atelier(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_first_generate_downloads_with_the_semantic_layer_on_and_the_next_start_makes_no_request(
        fake_hub: FakeHub, tmp_path: Path) -> None:
    env = hub_env(fake_hub, tmp_path / "hf-home", ATELIER_MODELS=str(hub_registry(tmp_path / "models.toml", REPO)),
                  ATELIER_DEVICES="cpu", ATELIER_NSFW_IMAGE_CHECK="false")  # the semantic layer stays on
    first = _atelier(["generate", "a lighthouse", "--seed", "1", "--steps", "2", "-o", "a.png"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Loading hub-sd15 for the first time" in first.stdout and (tmp_path / "a.png").is_file()
    assert any(p.endswith("unet/diffusion_pytorch_model.safetensors") for p in fake_hub.downloads())

    fake_hub.requests.clear()
    second = _atelier(["generate", "a lighthouse", "--seed", "1", "--steps", "2", "-o", "b.png"], env, tmp_path)
    assert second.returncode == 0, second.stderr
    assert fake_hub.requests == [] and "for the first time" not in second.stdout
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_models_pull_shows_progress_and_a_gated_repo_says_what_to_do(fake_hub: FakeHub, tmp_path: Path) -> None:
    models = hub_registry(tmp_path / "models.toml", REPO)
    env = hub_env(fake_hub, tmp_path / "hf-home", ATELIER_MODELS=str(models), ATELIER_DEVICES="cpu")
    fake_hub.gated.add(REPO)
    refused = _atelier(["models", "pull", "hub-sd15"], env, tmp_path)
    assert refused.returncode == 1
    assert f"accept its licence at {fake_hub.url}/{REPO}" in refused.stderr and "HF_TOKEN" in refused.stderr
    assert "Traceback" not in refused.stderr

    pulled = _atelier(["models", "pull"], {**env, "HF_TOKEN": fake_hub.token}, tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert "hub-sd15: [" in pulled.stdout and "100%" in pulled.stdout and "MB/s" in pulled.stdout
    assert f"hub-sd15: {REPO} downloaded" in pulled.stdout

    fake_hub.requests.clear()
    again = _atelier(["models", "pull", "hub-sd15"], env, tmp_path)
    assert again.returncode == 0 and f"hub-sd15: {REPO} already cached" in again.stdout
    assert fake_hub.requests == []
