"""Image to image on the tiny models: the input matters, strength matters, seeds reproduce."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import RequestRefused
from inference.runners.img2img import schedule
from inference.types import GenerationRequest


def _gradient(width: int = 64, height: int = 64, flip: bool = False) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.float32)
    row = np.stack([x, x[::-1], np.full_like(x, 128)], axis=-1)
    array = np.repeat(row[None], height, axis=0).astype(np.uint8)
    return Image.fromarray(array[:, ::-1] if flip else array)


def _request(model: str = "tiny-sd15", image: Image.Image | None = None, **changes: object) -> GenerationRequest:
    base = GenerationRequest(job_id=3, model=model, prompt="a harbour", width=64, height=64, steps=4, seed=5,
                             task="img2img", init_image=encode_job_image(image or _gradient()), strength=0.5)
    return replace(base, **changes)  # type: ignore[arg-type]


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_same_seed_reproduces_and_the_input_matters(engine: Engine, model: str) -> None:
    a = engine.run(_request(model))
    b = engine.run(_request(model))
    other_input = engine.run(_request(model, image=_gradient(flip=True)))
    assert np.array_equal(_pixels(a.images[0].png), _pixels(b.images[0].png))
    assert not np.array_equal(_pixels(a.images[0].png), _pixels(other_input.images[0].png))
    params = read_parameters(a.images[0].png)
    assert "Denoising strength: 0.5" in params and "Size: 64x64" in params


def test_low_strength_stays_closer_to_the_input_than_high(engine: Engine) -> None:
    source = np.asarray(_gradient()).astype(np.int16)
    low = _pixels(engine.run(_request(strength=0.1, steps=10)).images[0].png)
    high = _pixels(engine.run(_request(strength=1.0, steps=10)).images[0].png)
    assert np.abs(low - source).mean() < np.abs(high - source).mean()


def test_input_is_fitted_to_the_requested_size_and_count_gives_seed_plus_i(engine: Engine) -> None:
    result = engine.run(_request(image=_gradient(200, 100), width=128, height=64, count=2))
    assert [im.seed for im in result.images] == [5, 6]
    assert all((im.width, im.height) == (128, 64) for im in result.images)
    alone = engine.run(_request(image=_gradient(200, 100), width=128, height=64, seed=6))
    assert np.array_equal(_pixels(result.images[1].png), _pixels(alone.images[0].png))


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_batched_images_one_call_for_all_seeds(engine: Engine, model: str) -> None:
    # batch_images=True (one pipeline call for a job's images): one input, one latent per seed.
    batched = Engine(engine.registry, "cpu", cache=engine.cache, batch_images=True)
    seen: list[tuple[int, int]] = []
    result = batched.run(_request(model, image=_gradient(200, 100), width=128, height=64, count=3, steps=4,
                                  strength=0.5), on_step=lambda s, t: seen.append((s, t)))
    assert [im.seed for im in result.images] == [5, 6, 7]
    assert all((im.width, im.height) == (128, 64) for im in result.images)
    assert not np.array_equal(_pixels(result.images[0].png), _pixels(result.images[1].png))
    assert seen == [(i, 2) for i in range(1, 3)]  # one call: the steps are counted once


def test_progress_counts_only_the_steps_that_run(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    engine.run(_request(steps=8, strength=0.5), on_step=lambda s, t: seen.append((s, t)))
    assert seen == [(i, 4) for i in range(1, 5)]


def test_schedule_never_runs_zero_steps() -> None:
    assert schedule(4, 0.05) == (20, 1)
    assert schedule(10, 0.5) == (10, 5)
    assert schedule(4, 1.0) == (4, 4)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"init_image": None}, "needs an input image"),
    ({"strength": 0.01}, "Strength must be 0.05-1"),
    ({"strength": 1.5}, "you asked for 1.5"),
])
def test_bad_requests_are_refused(engine: Engine, changes: dict, needle: str) -> None:
    with pytest.raises(RequestRefused, match=needle):
        engine.run(_request(**changes))
