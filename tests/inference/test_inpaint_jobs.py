"""Canvas edits as the other SD jobs: textual-inversion embeddings, DPM++ SDE seeded by the job, and the
out-of-memory recovery covering the dedicated inpainting model that actually runs (tiny models)."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from inference import embeddings
from inference.cache import ModelCache
from inference.canvas import encode_mask
from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import ModelRegistry
from inference.runners import inpaint
from inference.types import GenerationRequest
from tests.embedding_files import tiny_embeddings  # noqa: F401  (fixture)

CANVAS = (96, 64)


def _request(registry: ModelRegistry, model: str, **changes: Any) -> GenerationRequest:
    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((CANVAS[1], CANVAS[0], 3)) * 255).astype(np.uint8))
    mask = Image.new("L", CANVAS, 0)
    mask.paste(255, (0, 0, 40, CANVAS[1]))
    width, height = registry.get(model).size_for_canvas(*CANVAS)
    base = GenerationRequest(job_id=21, model=model, prompt="a lighthouse", negative_prompt="blurry", width=width,
                             height=height, steps=3, seed=5, task="inpaint", init_image=encode_job_image(image),
                             mask_image=encode_mask(mask), strength=1.0, mask_blur=4)
    return replace(base, **changes)


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def ti_engine(tiny_registry: ModelRegistry, tiny_embeddings: Path) -> Engine:  # noqa: F811
    return Engine(tiny_registry, device="cpu", embeddings_dir=tiny_embeddings)


# tiny-sd15 redraws with its own weights (the inpaint pipeline over its resident one); tiny-sdxl with
# its linked dedicated model, tiny-sdxl-inpaint.
@pytest.mark.parametrize(("model", "ran", "positive", "negative"), [
    ("tiny-sd15", "tiny-sd15", "a lighthouse, sd15-one", "sd15-three"),
    ("tiny-sdxl", "tiny-sdxl-inpaint", "a lighthouse", "sdxl-neg, blurry"),
])
def test_an_embedding_applies_to_a_canvas_edit_for_its_job_only(ti_engine: Engine, tiny_embeddings: Path,  # noqa: F811
                                                                 model: str, ran: str, positive: str,
                                                                 negative: str) -> None:
    job = _request(ti_engine.registry, model, prompt=positive, negative_prompt=negative)
    before = ti_engine.run(job)
    pipe = ti_engine.cache.get(ti_engine.registry.get(ran), "cpu")
    rows = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    used = embeddings.EmbeddingLibrary(tiny_embeddings).used_in(positive, negative)
    assert used
    with_ti = ti_engine.run(replace(job, embeddings=used))
    after = ti_engine.run(job)
    assert not np.array_equal(_pixels(before.images[0].png), _pixels(with_ti.images[0].png))
    assert np.array_equal(_pixels(before.images[0].png), _pixels(after.images[0].png))
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows
    assert all(name not in pipe.tokenizer.get_vocab() for name in used)
    text = read_parameters(with_ti.images[0].png)
    assert "TI hashes: " in text and all(f"{name}: " in text for name in used)
    assert f"Model: {ran}" in text and "TI hashes" not in read_parameters(after.images[0].png)


def test_a_canvas_edit_refuses_an_unknown_embedding(ti_engine: Engine) -> None:
    with pytest.raises(embeddings.EmbeddingError, match="Unknown embedding 'nope'"):
        ti_engine.run(_request(ti_engine.registry, "tiny-sd15", embeddings=["nope"]))


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_dpmpp_sde_canvas_edits_repeat_with_the_seed(engine: Engine, model: str) -> None:
    job = _request(engine.registry, model, scheduler="dpmpp-sde-karras")
    first = engine.run(job)
    torch.manual_seed(1234)  # the global RNG moved on: only the job's seed may decide the noise
    again = engine.run(job)
    assert np.array_equal(_pixels(first.images[0].png), _pixels(again.images[0].png))
    other = engine.run(replace(job, seed=6))
    assert not np.array_equal(_pixels(first.images[0].png), _pixels(other.images[0].png))


def _where(cache: ModelCache) -> dict[str, str]:
    return {resident.name: resident.where for resident in cache.residents()}


class _OutOfMemoryCalls:
    """The inpaint runner's pipeline calls, failing with CUDA's out-of-memory error the first ``failures`` times."""

    def __init__(self, failures: int, engine: Engine, calls: Any) -> None:
        self.failures, self.engine, self.calls_through = failures, engine, calls
        self.calls = 0
        self.seen: list[dict[str, str]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.seen.append(_where(self.engine.cache))
        if self.calls <= self.failures:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.calls_through(*args, **kwargs)


def test_out_of_memory_offloads_the_dedicated_inpainting_model(tiny_registry: ModelRegistry,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(tiny_registry, "cpu", cache=ModelCache(), batch_max=1)
    engine.pipeline("tiny-sdxl")  # the base entry, idle: an edit on it runs tiny-sdxl-inpaint alone
    failing = _OutOfMemoryCalls(2, engine, inpaint.calls)
    monkeypatch.setattr(inpaint, "calls", failing)
    result = engine.run(_request(tiny_registry, "tiny-sdxl"))
    assert result.images and failing.calls == 3
    assert "Model: tiny-sdxl-inpaint" in read_parameters(result.images[0].png)
    # The first retry moved the idle base off the device and kept the model that runs...
    assert failing.seen[1] == {"tiny-sdxl": "ram", "tiny-sdxl-inpaint": "device"}
    # ...and the last one ran that model with CPU offload.
    assert failing.seen[2]["tiny-sdxl-inpaint"] == "offload"
    assert engine.models_of(tiny_registry.get("tiny-sdxl"), _request(tiny_registry, "tiny-sdxl")) == \
        ["tiny-sdxl-inpaint"]
    assert engine.models_of(tiny_registry.get("tiny-sdxl")) == ["tiny-sdxl"]
