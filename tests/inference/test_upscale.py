"""The RRDBNet upscaler: Real-ESRGAN state dicts load, tiling is seamless, scales and limits hold."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import RequestRefused
from inference.runners import upscale
from inference.testing import write_tiny_esrgan
from inference.types import GenerationRequest, JobCancelled


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(("scale", "suffix"), [(4, ".safetensors"), (2, ".pth"), (1, ".pth")])
def test_weights_describe_the_network(tmp_path: Path, scale: int, suffix: str) -> None:
    path = write_tiny_esrgan(tmp_path / f"m{suffix}", 1, scale=scale)
    model = upscale.load(path, "cpu")
    assert model.scale == scale and len(model.body) == 1 and model.conv_first.out_channels == 8
    out = upscale.upscale(model, _noise(20, 12), device="cpu", tile=8)
    assert out.size == (20 * scale, 12 * scale)


def test_tiles_give_the_same_pixels_as_one_pass_away_from_the_edges(tmp_path: Path) -> None:
    model = upscale.load(write_tiny_esrgan(tmp_path / "m.safetensors", 2), "cpu")
    image = _noise(48, 40)
    whole = np.asarray(upscale.upscale(model, image, device="cpu", tile=4096)).astype(int)
    tiled = np.asarray(upscale.upscale(model, image, device="cpu", tile=16, pad=16)).astype(int)
    # The receptive field of the tiny net fits in 16 px of context: tiling changes at most rounding.
    assert np.abs(whole - tiled).max() <= 1


def test_not_a_real_esrgan_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    torch.save({"model.0.weight": torch.zeros(1)}, str(path))
    with pytest.raises(ValueError, match="not a Real-ESRGAN"):
        upscale.load(path, "cpu")


def _request(**changes: object) -> GenerationRequest:
    base = GenerationRequest(job_id=9, model="tiny-esrgan", prompt="a harbour", task="upscale", scale=4,
                             init_image=encode_job_image(_noise(40, 24)), seed=3,
                             extra={"parameters": "a harbour\nSteps: 4, Seed: 3"})
    return replace(base, **changes)  # type: ignore[arg-type]


def test_engine_upscales_x4_and_x2_with_parameters_and_progress(engine: Engine) -> None:
    ticks: list[tuple[int, int]] = []
    x4 = engine.run(_request(), on_step=lambda d, t: ticks.append((d, t)))
    assert (x4.images[0].width, x4.images[0].height) == (160, 96)
    assert Image.open(io.BytesIO(x4.images[0].png)).size == (160, 96)
    text = read_parameters(x4.images[0].png)
    assert text.startswith("a harbour\nSteps: 4, Seed: 3, Postprocess upscale by: 4, Postprocess upscaler: tiny-esrgan")
    assert ticks == [(1, 1)]
    x2 = engine.run(_request(scale=2))
    assert Image.open(io.BytesIO(x2.images[0].png)).size == (80, 48)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"scale": 3}, "Scale must be 2 or 4"),
    ({"init_image": None}, "needs an input image"),
    ({"init_image": encode_job_image(_noise(1100, 1000))}, "up to 1.0 MP"),
    ({"task": "txt2img"}, "cannot run a txt2img job"),
])
def test_engine_refuses(engine: Engine, changes: dict, needle: str) -> None:
    with pytest.raises(RequestRefused, match=needle):
        engine.run(_request(**changes))


def test_cancel_between_tiles(engine: Engine) -> None:
    calls = iter([False, False, True])
    with pytest.raises(JobCancelled):
        engine.run(_request(init_image=encode_job_image(_noise(200, 100))), is_cancelled=lambda: next(calls, True))
