"""Hires fix on the tiny models: two passes, the final size, both passes' progress and cancel, the
upscaler chosen, and A1111's keys."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference.engine import Engine
from inference.media import read_parameters
from inference.models import ModelRegistry, RequestRefused
from inference.runners.hires import final_size
from inference.types import GenerationRequest, JobCancelled


def _request(model: str = "tiny-sd15", **changes: object) -> GenerationRequest:
    request = GenerationRequest(job_id=6, model=model, prompt="a castle", width=64, height=64, steps=5, seed=9,
                                hires=2.0, hires_strength=0.4, hires_upscaler="latent")
    return replace(request, **changes)  # type: ignore[arg-type]


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
@pytest.mark.parametrize(("upscaler", "named"), [("latent", "Latent"), ("", "tiny-esrgan"),
                                                 ("tiny-esrgan", "tiny-esrgan")])
def test_two_passes_give_hires_times_the_size_with_a1111_keys(engine: Engine, model: str, upscaler: str,
                                                              named: str) -> None:
    seen: list[tuple[int, int]] = []
    result = engine.run(_request(model, width=64, height=96, hires_upscaler=upscaler),
                        on_step=lambda s, t: seen.append((s, t)))
    image = result.images[0]
    assert (image.width, image.height) == (128, 192)
    params = read_parameters(image.png)
    assert (f"Size: 64x96, Model: {model}, Denoising strength: 0.4, Hires upscale: 2, Hires upscaler: {named}"
            in params)
    # 5 steps of the first pass, then int(5 x 0.4) = 2 of the second, counted as one job.
    assert seen == [(i, 7) for i in range(1, 8)]


def test_the_second_pass_redraws_at_its_strength_and_seeds_reproduce(engine: Engine) -> None:
    weak = _pixels(engine.run(_request(hires_strength=0.2, steps=10)).images[0].png)
    strong = _pixels(engine.run(_request(hires_strength=0.8, steps=10)).images[0].png)
    again = _pixels(engine.run(_request(hires_strength=0.8, steps=10)).images[0].png)
    assert not np.array_equal(weak, strong) and np.array_equal(strong, again)


def test_one_and_a_half_rounds_to_multiples_of_8_and_count_gives_seed_plus_i(engine: Engine) -> None:
    assert final_size(_request(width=72, height=64, hires=1.5)) == (104, 96)
    result = engine.run(_request(width=72, height=64, hires=1.5, count=2))
    assert [(im.width, im.height, im.seed) for im in result.images] == [(104, 96, 9), (104, 96, 10)]
    alone = engine.run(_request(width=72, height=64, hires=1.5, seed=10))
    assert np.array_equal(_pixels(result.images[1].png), _pixels(alone.images[0].png))


@pytest.mark.parametrize("after", [2, 6])  # in the first pass, in the second
def test_cancel_stops_either_pass(engine: Engine, after: int) -> None:
    seen: list[int] = []
    with pytest.raises(JobCancelled):
        engine.run(_request(steps=5, hires_strength=0.8), on_step=lambda s, t: seen.append(s),
                   is_cancelled=lambda: len(seen) >= after)
    assert seen == list(range(1, after + 1))
    # The next job is unaffected.
    assert engine.run(_request(hires=0.0)).images[0].width == 64


def test_without_an_installed_upscaler_the_default_is_lanczos(engine: Engine, tiny_models: Path) -> None:
    text = tiny_models.read_text().replace('source = "tiny-esrgan/tiny-esrgan-x4.safetensors"',
                                           'source = "nobody/not-downloaded"\nfile = "x4.pth"')
    path = tiny_models.parent / "no-upscaler.toml"
    path.write_text(text)
    bare = Engine(ModelRegistry.load(path), "cpu", cache=engine.cache)
    result = bare.run(_request(hires_upscaler=""))
    assert "Hires upscaler: Lanczos" in read_parameters(result.images[0].png)
    assert (result.images[0].width, result.images[0].height) == (128, 128)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"hires": 3.0}, "Hires upscale must be 1.5 or 2; you asked for 3"),
    ({"hires_strength": 0.0}, "Hires strength must be 0.05-1"),
    ({"hires_upscaler": "nope"}, "Unknown hires upscaler 'nope'; valid: latent, tiny-esrgan"),
    ({"width": 2304}, "the largest side is 4096"),
])
def test_bad_hires_requests_are_refused(engine: Engine, changes: dict, needle: str) -> None:
    with pytest.raises(RequestRefused, match=needle):
        engine.run(_request(**changes))


def test_hires_is_for_text_to_image_only(engine: Engine) -> None:
    from inference.media import encode_job_image

    image = encode_job_image(Image.new("RGB", (64, 64)))
    with pytest.raises(RequestRefused, match="text-to-image jobs only"):
        engine.run(_request(task="img2img", init_image=image, strength=0.5))
