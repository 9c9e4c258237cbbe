"""Downloads from a fake Hugging Face hub (tests/fakehub.py): what is fetched, progress, and why it failed."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from inference import hub, hub_progress
from tests.fakehub import FakeHub, repo_from, serving, use_hub

REPO = "atelier-test/tiny-sd15"
SD15_LISTING = {
    "model_index.json": 500, "v1-5-pruned.safetensors": 4_000_000_000, "v1-5-pruned.ckpt": 4_000_000_000,
    "scheduler/scheduler_config.json": 300, "tokenizer/vocab.json": 900, "tokenizer/merges.txt": 500,
    "text_encoder/config.json": 500, "text_encoder/model.safetensors": 490_000_000,
    "text_encoder/model.fp16.safetensors": 245_000_000, "text_encoder/pytorch_model.bin": 490_000_000,
    "unet/config.json": 700, "unet/diffusion_pytorch_model.safetensors": 3_400_000_000,
    "unet/diffusion_pytorch_model.fp16.safetensors": 1_700_000_000,
    "unet/diffusion_pytorch_model.non_ema.safetensors": 3_400_000_000, "unet/diffusion_pytorch_model.bin": 1,
    "vae/config.json": 500, "vae/diffusion_pytorch_model.safetensors": 330_000_000,
    "vae/diffusion_pytorch_model.fp16.safetensors": 165_000_000,
    "safety_checker/config.json": 500, "safety_checker/model.safetensors": 1_200_000_000,
    "safety_checker/model.fp16.safetensors": 600_000_000,
}
SD15_INDEX = {"_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "PNDMScheduler"],
              "tokenizer": ["transformers", "CLIPTokenizer"], "text_encoder": ["transformers", "CLIPTextModel"],
              "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
              "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"], "feature_extractor": [None, None]}


def test_a_gpu_plan_takes_fp16_safetensors_only_and_skips_unused_weights() -> None:
    files, variant = hub.plan_files(SD15_LISTING, SD15_INDEX, variant="fp16", skip_weights=["safety_checker"])
    assert variant == "fp16"
    weights = sorted(f for f in files if f.endswith(".safetensors"))
    assert weights == ["text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                       "vae/diffusion_pytorch_model.fp16.safetensors"]
    assert "safety_checker/config.json" in files and "tokenizer/merges.txt" in files and "model_index.json" in files
    assert not any(f.endswith((".bin", ".ckpt")) or f.startswith("v1-5") for f in files)


def test_a_cpu_plan_takes_the_plain_files_and_falls_back_to_fp16_when_a_component_has_no_plain_ones() -> None:
    files, variant = hub.plan_files(SD15_LISTING, SD15_INDEX, variant=None, skip_weights=["safety_checker"])
    assert variant is None and "unet/diffusion_pytorch_model.safetensors" in files
    assert "unet/diffusion_pytorch_model.non_ema.safetensors" not in files
    only_fp16 = {k: v for k, v in SD15_LISTING.items() if k != "vae/diffusion_pytorch_model.safetensors"}
    _, variant = hub.plan_files(only_fp16, SD15_INDEX, variant=None, skip_weights=["safety_checker"])
    assert variant == "fp16"
    no_fp16 = {k: v for k, v in SD15_LISTING.items() if k != "vae/diffusion_pytorch_model.fp16.safetensors"}
    _, variant = hub.plan_files(no_fp16, SD15_INDEX, variant="fp16", skip_weights=["safety_checker"])
    assert variant is None  # the variant only where every component has it


def test_a_component_with_pickled_weights_only_is_refused() -> None:
    listing = {k: v for k, v in SD15_LISTING.items() if not k.startswith("unet/diffusion_pytorch_model.")}
    listing["unet/diffusion_pytorch_model.bin"] = 1
    with pytest.raises(ValueError, match="no safetensors weights for unet"):
        hub.plan_files(listing, SD15_INDEX, variant=None)


@pytest.fixture
def fake_hub(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    fake = FakeHub()
    fake.add(REPO, repo_from(tiny_models.parent / "tiny-sd15", tmp_path / "repo"))
    with serving(fake):
        use_hub(monkeypatch, fake, tmp_path / "hf-cache")
        yield fake


def test_first_use_downloads_with_progress_and_the_next_makes_no_request(fake_hub: FakeHub,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    events: list[hub_progress.DownloadProgress] = []
    with caplog.at_level(logging.INFO, logger="inference.hub_progress"), hub_progress.reporting(events.append):
        folder, variant = hub.fetch_pipeline("tiny", REPO, variant=None)
    assert variant is None and (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    fetched = fake_hub.downloads()
    assert fetched and not any(p.endswith((".bin", ".ckpt", ".fp16.safetensors")) or "v1-5" in p for p in fetched)
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert events[0].done <= (folder / "model_index.json").stat().st_size  # before the first weights
    assert events[-1].done == events[-1].total == total
    assert events[0].describe() == f"Loading tiny for the first time: 0.0 / {total / 1e9:.1f} GB"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("downloading tiny:")]
    assert lines and "100%" in lines[-1] and "MB/s" in lines[-1]

    fake_hub.requests.clear()
    assert hub.fetch_pipeline("tiny", REPO, variant=None) == (folder, None)
    assert fake_hub.requests == []


def test_the_fp16_variant_is_downloaded_for_an_accelerator(fake_hub: FakeHub) -> None:
    folder, variant = hub.pipeline_folder("tiny", REPO, device="cuda:0")
    assert variant == "fp16" and Path(folder, "unet", "diffusion_pytorch_model.fp16.safetensors").is_file()
    assert not any(p.endswith("/diffusion_pytorch_model.safetensors") for p in fake_hub.downloads())


def test_a_gated_repo_names_the_licence_page_and_hf_token(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_hub.gated.add(REPO)
    with pytest.raises(hub.GatedModel) as info:
        hub.fetch_pipeline("tiny", REPO, variant=None)
    message = info.value.member_message
    assert f"{fake_hub.url}/{REPO}" in message and "HF_TOKEN" in message and "401" in info.value.detail
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)  # the owner accepted the licence and set the token
    folder, _ = hub.fetch_pipeline("tiny", REPO, variant=None)
    assert (folder / "model_index.json").is_file()


def test_a_dropped_connection_is_a_network_failure(fake_hub: FakeHub) -> None:
    fake_hub.drop.add(f"{REPO}/unet/diffusion_pytorch_model.safetensors")
    with pytest.raises(hub.HubUnreachable) as info:
        hub.fetch_pipeline("tiny", REPO, variant=None)
    assert "could not be reached" in info.value.member_message
    fake_hub.drop.clear()  # the network is back: the download resumes and completes
    folder, _ = hub.fetch_pipeline("tiny", REPO, variant=None)
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_an_unreachable_hub_and_an_unknown_repo_say_so(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(hub.ModelUnavailable, match="no repository atelier-test/nope") as info:
        hub.fetch_pipeline("nope", "atelier-test/nope", variant=None)
    assert type(info.value) is hub.ModelUnavailable
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(hub.HubUnreachable):
        hub.fetch_pipeline("tiny", REPO, variant=None)


def test_offline_with_nothing_cached_says_downloads_are_off(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(hub.ModelUnavailable, match="hf download atelier-test/tiny-sd15"):
        hub.fetch_pipeline("tiny", REPO, variant=None)
    assert fake_hub.requests == []
