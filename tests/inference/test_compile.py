"""ATELIER_COMPILE on the CPU with the tiny models: compiled output matches eager within tolerance,
and after one warm-up pass over two aspects and batch 1/2 (with and without a LoRA slot on) a job
compiles nothing, whichever LoRAs it switches to."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from inference import compile as compiling
from inference.engine import Engine
from inference.types import GenerationRequest
from tests.lora_files import tiny_loras  # noqa: F401  (fixture)


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def _job(width: int, height: int, count: int, loras: list[tuple[str, float]] | None = None) -> GenerationRequest:
    return GenerationRequest(job_id=1, model="tiny-sd15", prompt="a lighthouse", negative_prompt="blurry",
                             width=width, height=height, steps=2, seed=3, count=count, loras=loras or [])


def test_modes_and_defaults() -> None:
    assert compiling.resolve(None, "cuda:0") == "regional" and compiling.resolve(None, "cpu") == "off"
    assert compiling.resolve("max", "cpu") == "max"
    with pytest.raises(ValueError, match="ATELIER_COMPILE must be one of off, regional, max"):
        compiling.resolve("fast", "cuda")


@pytest.fixture
def dynamo_settings() -> Iterator[None]:
    """What compiling.configure_process sets in the wiring place, for one test (Dynamo's own patch:
    monkeypatching its config module loses the attribute for the next test)."""
    from torch.fx.experimental import _config as fx_config

    with torch._dynamo.config.patch(recompile_limit=64), fx_config.patch(use_duck_shape=False):
        yield


def _warmed_engine(tiny_registry, tiny_loras) -> Engine:  # type: ignore[no-untyped-def]  # noqa: F811
    """Dynamo's eager backend: the same graph capture, guards and recompiles as inductor, without
    the C++ compiler a CPU inductor run would spend minutes in. Warmed up as the worker does while
    idle: two aspects at batch 1 and 2, with and without a LoRA slot on."""
    torch._dynamo.reset()
    engine = Engine(tiny_registry, "cpu", batch_max=1, compile_mode="regional", compile_backend="eager",
                    lora_dir=tiny_loras)
    engine.plan_warm_up("tiny-sd15", [(64, 64), (96, 64)])
    while engine.warm_up_step():
        pass
    assert engine.pipeline("tiny-sd15").unet._atelier_compiled
    return engine


@pytest.mark.slow
def test_regional_compile_matches_eager_and_does_not_recompile_after_warm_up(
        tiny_registry, tiny_loras, dynamo_settings) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from torch._dynamo.utils import counters

    engine = _warmed_engine(tiny_registry, tiny_loras)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs > 0
    # Jobs at both aspects and both batch sizes, in another order: nothing compiles.
    plain = engine.run(_job(64, 64, 1))
    engine.run(_job(96, 64, 2))
    engine.run(_job(96, 64, 1))
    engine.run(_job(64, 64, 2))
    assert counters["stats"]["unique_graphs"] == graphs, "a job after the warm-up compiled something"
    reference = Engine(tiny_registry, "cpu", batch_max=1).run(_job(64, 64, 1)).images[0].png
    assert np.abs(_pixels(plain.images[0].png) - _pixels(reference)).max() <= 3


@pytest.mark.slow
def test_switching_loras_after_their_first_use_does_not_recompile(
        tiny_registry, tiny_loras, dynamo_settings) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """LoRAs go into the UNet's fixed slots (inference/hotswap.py), and the warm-up ran every shape
    with a slot on too: neither a LoRA's first use nor switching between LoRAs compiles anything."""
    from torch._dynamo.utils import counters

    engine = _warmed_engine(tiny_registry, tiny_loras)
    warmed = counters["stats"]["unique_graphs"]
    a, b = [("sd15/kohya-style", 1.0)], [("sd15/diffusers-style", 0.6)]
    for loras in (a, b):
        engine.run(_job(64, 64, 1, loras))
        engine.run(_job(96, 64, 2, loras))
    graphs = counters["stats"]["unique_graphs"]
    assert graphs == warmed, "a LoRA's first use after the warm-up compiled something"
    plain = engine.run(_job(64, 64, 1))
    styled = engine.run(_job(96, 64, 1, a))
    other = engine.run(_job(64, 64, 2, b))
    engine.run(_job(96, 64, 2))
    eager = Engine(tiny_registry, "cpu", batch_max=1, lora_dir=tiny_loras)
    for got, job in ((styled, _job(96, 64, 1, a)), (other, _job(64, 64, 2, b))):
        for image, reference in zip(got.images, eager.run(job).images, strict=True):
            assert np.abs(_pixels(image.png) - _pixels(reference.png)).max() <= 3
    assert not np.array_equal(_pixels(plain.images[0].png), _pixels(styled.images[0].png)[:, :64])
    assert counters["stats"]["unique_graphs"] == graphs, "a job after the warm-up compiled something"
