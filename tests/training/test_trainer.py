"""The LoRA trainer on the tiny models (CPU, fp32): it learns, its file loads through the LoRA path and
changes the image, it stops within a step, and a killed run resumes to the same weights."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from inference import lora
from inference.engine import Engine
from inference.models import ModelRegistry
from inference.training import dataset, kohya
from inference.training.settings import TrainingSettings
from inference.training.trainer import TrainingCancelled, train_lora
from inference.types import GenerationRequest


def training_images(count: int = 5, *, seed: int = 0, size: tuple[int, int] = (320, 256)) -> list[bytes]:
    """Distinct PNGs: a coloured square on a gradient, placed differently in each."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for index in range(count):
        image = Image.new("RGB", size, (40 + 30 * index, 90, 160))
        left, top = (int(v) for v in torch.randint(0, 120, (2,), generator=generator))
        image.paste((250, 220 - 20 * index, 30), (left, top, left + 100, top + 100))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append(buffer.getvalue())
    return out


def tiny_settings(family: str = "sd1", **changes: object) -> TrainingSettings:
    base = TrainingSettings(kind="subject", family=family, trigger="zxq_rosie",
                            base_model="tiny-sd15" if family == "sd1" else "tiny-sdxl", rank=4, steps=6,
                            learning_rate=5e-3, resolution=64, seed=3, checkpoint_every=3, sample_every=3,
                            sample_steps=2)
    return replace(base, **changes)  # type: ignore[arg-type]


def _source(registry: ModelRegistry, family: str) -> str:
    return registry.get("tiny-sd15" if family == "sd1" else "tiny-sdxl").source


@pytest.fixture(scope="module")
def registry(tiny_models: Path) -> ModelRegistry:
    return ModelRegistry.load(tiny_models)


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_training_lowers_the_loss_and_writes_a_kohya_lora_with_metadata(registry: ModelRegistry, tmp_path: Path,
                                                                       family: str) -> None:
    images = training_images()
    samples: list[tuple[int, Image.Image]] = []
    progress: list[int] = []
    result = train_lora(tiny_settings(family, steps=12, sample_every=6), images, source=_source(registry, family),
                        device="cpu", work_dir=tmp_path / "work", output=tmp_path / "out" / "rosie.safetensors",
                        name="rosie", on_sample=lambda step, image: samples.append((step, image)),
                        on_progress=lambda step, steps, loss: progress.append(step))
    assert result.final_loss < result.initial_loss
    assert progress == list(range(1, 13))
    assert [step for step, _ in samples] == [6, 12] and samples[0][1].size == (64, 64)
    assert not (tmp_path / "work" / "checkpoint.pt").exists()  # finished: nothing left to resume
    with safe_open(str(result.path), "pt") as handle:
        keys = list(handle.keys())
        meta = handle.metadata()
    assert keys and all(k.startswith("lora_unet_") and k.endswith((".lora_down.weight", ".lora_up.weight", ".alpha"))
                        for k in keys)
    assert any("attn2_to_k.lora_down" in k for k in keys)
    assert meta["ss_base_model_version"] == kohya.BASE_VERSIONS[family]
    assert meta["ss_sd_model_name"] == tiny_settings(family).base_model
    assert meta["modelspec.trigger_phrase"] == "zxq_rosie" and meta["ss_steps"] == "12"
    assert json.loads(meta["atelier.image_sha256"]) == result.image_hashes and len(set(result.image_hashes)) == 5
    assert meta["atelier.trainer"].startswith("atelier-lora-trainer/")
    header = lora.read_header(result.path)
    assert lora.family_hint(header) == ("sdxl" if family == "sdxl" else "sd1")


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_the_lora_loads_through_the_lora_path_and_changes_the_image(registry: ModelRegistry, tmp_path: Path,
                                                                    model: str) -> None:
    family = "sd1" if model == "tiny-sd15" else "sdxl"
    folder = tmp_path / "loras"
    train_lora(tiny_settings(family, steps=4, learning_rate=5e-2), training_images(), source=_source(registry, family),
               device="cpu", work_dir=tmp_path / "work", output=folder / "me" / "rosie.safetensors", name="rosie")
    engine = Engine(registry, device="cpu", lora_dir=folder)
    request = GenerationRequest(job_id=1, model=model, prompt="zxq_rosie on a beach", width=64, height=64, steps=2,
                                seed=7)
    plain = engine.run(request).images[0].png
    with_lora = engine.run(replace(request, loras=[("me/rosie", 1.0)])).images[0].png
    assert with_lora != plain
    assert engine.run(request).images[0].png == plain  # and nothing of it stays behind


def test_cancel_stops_within_a_step_and_keeps_the_checkpoint(registry: ModelRegistry, tmp_path: Path) -> None:
    steps_run: list[int] = []
    with pytest.raises(TrainingCancelled):
        train_lora(tiny_settings(steps=20), training_images(), source=_source(registry, "sd1"), device="cpu",
                   work_dir=tmp_path / "work", output=tmp_path / "rosie.safetensors", name="rosie",
                   should_stop=lambda: len(steps_run) >= 4, on_progress=lambda step, steps, loss: steps_run.append(step))
    assert steps_run == [1, 2, 3, 4]
    assert not (tmp_path / "rosie.safetensors").exists()
    assert torch.load(tmp_path / "work" / "checkpoint.pt", weights_only=True)["step"] == 3


class Killed(Exception):
    pass


def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_weights(registry: ModelRegistry, tmp_path: Path) -> None:
    source, images = _source(registry, "sd1"), training_images()
    whole = train_lora(tiny_settings(steps=6), images, source=source, device="cpu", work_dir=tmp_path / "a",
                       output=tmp_path / "whole.safetensors", name="rosie")

    def die_at_5(step: int, steps: int, loss: float) -> None:
        if step == 5:
            raise Killed  # after the checkpoint at step 3, as a process killed mid-run

    with pytest.raises(Killed):
        train_lora(tiny_settings(steps=6), images, source=source, device="cpu", work_dir=tmp_path / "b",
                   output=tmp_path / "resumed.safetensors", name="rosie", on_progress=die_at_5)
    seen: list[int] = []
    resumed = train_lora(tiny_settings(steps=6), images, source=source, device="cpu", work_dir=tmp_path / "b",
                         output=tmp_path / "resumed.safetensors", name="rosie",
                         on_progress=lambda step, steps, loss: seen.append(step))
    assert resumed.resumed_from == 3 and seen == [4, 5, 6] and whole.resumed_from == 0
    with safe_open(str(whole.path), "pt") as a, safe_open(str(resumed.path), "pt") as b:
        assert sorted(a.keys()) == sorted(b.keys())
        for key in a.keys():
            assert torch.equal(a.get_tensor(key), b.get_tensor(key)), key


def test_a_checkpoint_for_other_images_is_not_resumed(registry: ModelRegistry, tmp_path: Path) -> None:
    source = _source(registry, "sd1")
    with pytest.raises(TrainingCancelled):
        calls = iter(range(100))
        train_lora(tiny_settings(steps=6), training_images(), source=source, device="cpu", work_dir=tmp_path / "w",
                   output=tmp_path / "x.safetensors", name="x", should_stop=lambda: next(calls) >= 4)
    result = train_lora(tiny_settings(steps=6), training_images(seed=9), source=source, device="cpu",
                        work_dir=tmp_path / "w", output=tmp_path / "x.safetensors", name="x")
    assert result.resumed_from == 0


def test_buckets_keep_the_aspect_and_captions_lead_with_the_trigger() -> None:
    assert dataset.bucket_for((1200, 800), 512) == (640, 384)
    assert dataset.bucket_for((800, 1200), 1024) == (832, 1216)
    assert dataset.bucket_for((800, 800), 512) == (512, 512)
    assert dataset.bucket_for((1200, 800), 512, enabled=False) == (512, 512)
    assert all(w % 64 == 0 and h % 64 == 0 for w, h in dataset.buckets(1024))
    prepared = dataset.prepare(training_images(1, size=(400, 200)), trigger="zxq", resolution=64,
                               captioner=lambda image: "a red square")
    assert prepared[0].caption == "zxq, a red square"
    assert prepared[0].image.size[0] > prepared[0].image.size[1]
    assert prepared[0].original_size == (200, 400)


def test_kohya_keys_from_peft_names() -> None:
    state = {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_A.weight": torch.ones(4, 32),
             "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_B.weight": torch.ones(32, 4)}
    out = kohya.to_kohya(state, alpha=2.0)
    base = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0"
    assert sorted(out) == [f"{base}.alpha", f"{base}.lora_down.weight", f"{base}.lora_up.weight"]
    assert float(out[f"{base}.alpha"]) == 2.0
    with pytest.raises(ValueError):
        kohya.to_kohya({"unet.something.weight": torch.ones(1)}, alpha=1.0)
