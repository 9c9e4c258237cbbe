"""Inpainting jobs take LoRAs and per-job samplers as text-to-image jobs do, on both paths
(the base model's own weights, and a dedicated inpainting model), and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from inference import lora
from inference.canvas import encode_mask
from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import ModelRegistry
from inference.types import GenerationRequest
from tests.lora_files import tiny_loras  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def lora_engine(tiny_registry: ModelRegistry, tiny_loras: Path) -> Engine:  # noqa: F811
    return Engine(tiny_registry, device="cpu", lora_dir=tiny_loras)


def _request(model: str, **changes: object) -> GenerationRequest:
    canvas = Image.new("RGB", (96, 64), (40, 120, 60))
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (48, 0, 96, 64))
    return GenerationRequest(job_id=5, model=model, prompt="a red door", width=96, height=64, steps=3, seed=2,
                             task="inpaint", init_image=encode_job_image(canvas), mask_image=encode_mask(mask),
                             strength=1.0, mask_blur=4, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("model", "family"), [("tiny-sd15", "sd15"), ("tiny-sdxl", "sdxl")])
def test_loras_change_the_redrawn_part_and_leave_nothing_behind(lora_engine: Engine, model: str,
                                                                family: str) -> None:
    before = lora_engine.run(_request(model)).images[0].png
    styled = lora_engine.run(_request(model, loras=[(f"{family}/kohya-style", 1.0)])).images[0].png
    assert styled != before
    assert lora_engine.run(_request(model)).images[0].png == before
    text = read_parameters(styled)
    digest = lora.short_hash(lora_engine.loras.resolve(f"{family}/kohya-style").path)  # type: ignore[union-attr]
    assert f"<lora:{family}/kohya-style:1>" in text and f"Lora hashes: \"{family}/kohya-style: {digest}\"" in text


def test_a_per_job_sampler_applies_and_the_models_own_comes_back(lora_engine: Engine) -> None:
    before = lora_engine.run(_request("tiny-sd15")).images[0].png
    ddim = lora_engine.run(_request("tiny-sd15", scheduler="ddim")).images[0].png
    assert "Sampler: DDIM" in read_parameters(ddim) and ddim != before
    assert lora_engine.run(_request("tiny-sd15")).images[0].png == before
