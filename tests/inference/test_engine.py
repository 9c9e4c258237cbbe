"""The engine on tiny random-weight models: determinism, seeds, progress, cancellation, errors."""

from __future__ import annotations

import gc
import hashlib
import io
import weakref
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import hub
from inference.cache import ModelCache
from inference.engine import Engine
from inference.media import DIGITAL_SOURCE_TYPE, read_parameters
from inference.models import ModelRegistry, RequestRefused, UnknownModel
from inference.types import GenerationRequest, JobCancelled

KINDS = ["tiny-sd15", "tiny-sdxl", "tiny-sdxl-lightning", "tiny-sdxl-turbo"]


def request(model: str = "tiny-sd15", **changes: object) -> GenerationRequest:
    base = GenerationRequest(
        job_id=1,
        model=model,
        prompt="a lighthouse at dusk",
        negative_prompt="blurry",
        width=64,
        height=64,
        steps=2,
        seed=7,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def test_make_tiny_is_deterministic(tmp_path: Path, tiny_models: Path) -> None:
    from inference.testing import make_tiny

    again = make_tiny(tmp_path / "again")
    digests = {}
    for root in (tiny_models.parent, again.parent):
        digests[root] = {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
    first, second = digests.values()
    assert first == second
    assert "tiny-sdxl-lightning/unet.safetensors" in first


@pytest.mark.parametrize("model", KINDS)
def test_same_seed_same_pixels_other_seed_other_pixels(engine: Engine, model: str) -> None:
    steps = min(2, engine.registry.get(model).steps)
    a = engine.run(request(model, steps=steps))
    b = engine.run(request(model, steps=steps))
    c = engine.run(request(model, steps=steps, seed=8))
    assert np.array_equal(pixels(a.images[0].png), pixels(b.images[0].png))
    assert not np.array_equal(pixels(a.images[0].png), pixels(c.images[0].png))
    assert a.images[0].seed == 7 and a.grid_png is None and a.run_seconds > 0


# Euler ancestral (tiny-sd15) draws noise at every step, Euler trailing (Lightning) does not.
@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl-lightning"])
def test_image_i_of_a_job_is_seed_plus_i_alone(engine: Engine, model: str) -> None:
    steps = 2
    job = engine.run(request(model, steps=steps, count=4))
    assert [image.seed for image in job.images] == [7, 8, 9, 10]
    for i, image in enumerate(job.images):
        alone = engine.run(request(model, steps=steps, seed=7 + i)).images[0]
        assert np.array_equal(pixels(image.png), pixels(alone.png)), f"image {i}"


def test_png_carries_a1111_parameters_and_ai_markers(engine: Engine) -> None:
    result = engine.run(request(guidance=7.0))
    text = read_parameters(result.images[0].png)
    assert text == result.parameters
    assert text == (
        "a lighthouse at dusk\nNegative prompt: blurry\n"
        "Steps: 2, Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 64x64, Model: tiny-sd15"
    )
    with Image.open(io.BytesIO(result.images[0].png)) as image:
        assert image.info["AI-generated"] == "true"
        assert image.info["Software"] == "Atelier"
        assert DIGITAL_SOURCE_TYPE in image.info["XML:com.adobe.xmp"]


def test_512_default_size_comes_out_512(engine: Engine) -> None:
    spec = engine.registry.get("tiny-sd15")
    result = engine.run(request(width=spec.width, height=spec.height, steps=1))
    assert pixels(result.images[0].png).shape == (512, 512, 3)


def test_few_step_models_run_without_guidance(engine: Engine) -> None:
    result = engine.run(request("tiny-sdxl-lightning", steps=2, guidance=7.0))
    assert "CFG scale: 0," in result.parameters
    assert "Sampler: Euler, " in result.parameters and "Schedule type: SGM Uniform" in result.parameters
    pipe = engine.pipeline("tiny-sdxl-lightning")
    assert pipe.scheduler.config.timestep_spacing == "trailing"


@pytest.mark.parametrize(("count", "shape"), [(2, (64, 128, 3)), (3, (128, 128, 3)), (4, (128, 128, 3))])
def test_grid_for_multi_image_jobs(engine: Engine, count: int, shape: tuple[int, int, int]) -> None:
    result = engine.run(request(steps=1, count=count))
    assert result.grid_png is not None
    grid = pixels(result.grid_png)
    assert grid.shape == shape
    assert np.array_equal(grid[:64, 64:128], pixels(result.images[1].png))
    assert "Seed: 7," in (read_parameters(result.grid_png) or "")


def test_progress_reports_every_step(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    engine.run(request(steps=3, count=2), on_step=lambda step, total: seen.append((step, total)))
    # One call for both images (the engine is batch-invariant): progress runs over its steps.
    assert seen == [(1, 3), (2, 3), (3, 3)]
    lone = Engine(engine.registry, "cpu", batch_max=1)
    seen.clear()
    lone.run(request(steps=3, count=2), on_step=lambda step, total: seen.append((step, total)))
    # Not invariant: one call per image, and progress runs over the steps of both calls.
    assert seen == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


@pytest.mark.parametrize(("count", "stop_at"), [(1, 2), (2, 2)])
def test_cancellation_stops_at_the_requested_step(engine: Engine, count: int, stop_at: int) -> None:
    seen: list[int] = []
    with pytest.raises(JobCancelled) as info:
        engine.run(
            request(steps=3, count=count, job_id=42),
            on_step=lambda step, total: seen.append(step),
            is_cancelled=lambda: len(seen) >= stop_at,
        )
    assert (info.value.job_id, info.value.step) == (42, stop_at)
    assert seen == list(range(1, stop_at + 1))
    # The pipeline is usable again right after a cancelled run.
    assert engine.run(request(steps=1)).images


def test_cancelled_before_start_runs_nothing(engine: Engine) -> None:
    seen: list[int] = []
    with pytest.raises(JobCancelled) as info:
        engine.run(request(), on_step=lambda step, total: seen.append(step), is_cancelled=lambda: True)
    assert info.value.step == 0 and seen == []


def test_unknown_model_names_the_valid_ones(engine: Engine) -> None:
    with pytest.raises(UnknownModel, match="valid models: tiny-sd15, tiny-sdxl"):
        engine.run(request("nope"))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": 0}, "Steps must be 1-50 for tiny-sd15; you asked for 0"),
        ({"steps": 10000}, "you asked for 10000"),
        ({"count": 5}, "Count must be 1-4"),
        ({"width": 100}, "multiples of 8"),
        ({"prompt": "  "}, "The prompt is empty"),
        ({"scheduler": "magic"}, "Unknown scheduler 'magic'"),
    ],
)
def test_bad_options_are_refused(engine: Engine, changes: dict[str, object], message: str) -> None:
    with pytest.raises(RequestRefused, match=message):
        engine.run(request(**changes))  # type: ignore[arg-type]


def test_request_scheduler_overrides_for_one_run(engine: Engine) -> None:
    result = engine.run(request(scheduler="ddim", steps=1))
    assert "Sampler: DDIM," in result.parameters
    assert type(engine.pipeline("tiny-sd15").scheduler).__name__ == "EulerAncestralDiscreteScheduler"


def test_cache_loads_once_shares_base_weights_and_evicts(tiny_registry: ModelRegistry) -> None:
    cache = ModelCache()
    base = cache.get(tiny_registry.get("tiny-sdxl"), "cpu")
    assert cache.get(tiny_registry.get("tiny-sdxl"), "cpu") is base
    lightning = cache.get(tiny_registry.get("tiny-sdxl-lightning"), "cpu")
    assert lightning.text_encoder is base.text_encoder and lightning.vae is base.vae
    assert lightning.unet is not base.unet and lightning.scheduler is not base.scheduler
    assert sorted(cache.loaded()) == [("tiny-sdxl", "cpu"), ("tiny-sdxl-lightning", "cpu")]
    assert cache.evict("tiny-sdxl") == 1
    assert cache.loaded() == [("tiny-sdxl-lightning", "cpu")]


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_loaded_models_are_kept_out_of_the_cyclic_collector(tiny_registry: ModelRegistry) -> None:
    # A full collection walks every tracked object holding the GIL; a model's objects are frozen
    # after loading, and an eviction thaws them so cycles among what was dropped are still freed.
    gc.unfreeze()
    cache = ModelCache()
    cache.get(tiny_registry.get("tiny-sd15"), "cpu")
    assert gc.get_freeze_count() > 0
    cycle = _Cycle()
    ref = weakref.ref(cycle)
    gc.freeze()
    del cycle
    gc.collect()
    assert ref() is not None  # frozen: the collector no longer looks at it
    assert cache.evict("tiny-sd15") == 1
    assert ref() is None


def test_base_loaded_after_lightning_keeps_its_own_unet(tiny_registry: ModelRegistry) -> None:
    cache = ModelCache()
    lightning = cache.get(tiny_registry.get("tiny-sdxl-lightning"), "cpu")
    base = cache.get(tiny_registry.get("tiny-sdxl"), "cpu")
    assert base.unet is not lightning.unet
    base_weight = next(base.unet.parameters())
    assert not bool((base_weight == next(lightning.unet.parameters())).all())


def test_lightning_loads_alone_the_same(tiny_registry: ModelRegistry, engine: Engine) -> None:
    # Loaded without a resident base (no weight sharing) it must give the same pixels.
    alone = Engine(tiny_registry, cache=ModelCache())
    a = alone.run(request("tiny-sdxl-lightning"))
    b = engine.run(request("tiny-sdxl-lightning"))
    assert np.array_equal(pixels(a.images[0].png), pixels(b.images[0].png))


def test_uncached_hub_model_fails_fast_naming_it() -> None:
    registry = ModelRegistry.load(None)
    spec = replace(registry.get("sd15"), name="ghost", source="atelier-tests/does-not-exist")
    with pytest.raises(hub.ModelUnavailable, match=r"ghost.*hf download atelier-tests/does-not-exist") as info:
        ModelCache().get(spec, "cpu")  # the suite runs with HF_HUB_OFFLINE=1
    assert "downloads are turned off" in info.value.member_message
