"""Samplers by A1111 name, BREAK, and textual-inversion embeddings on the tiny models."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference import embeddings, prompts
from inference.cache import SCHEDULER_CLASSES, make_scheduler
from inference.engine import Engine
from inference.media import read_parameters
from inference.models import (
    A1111_SAMPLERS,
    SAMPLER_NAMES,
    ModelRegistry,
    RequestRefused,
    fit_scheduler,
    scheduler_key,
)
from inference.types import GenerationRequest
from tests.embedding_files import tiny_embeddings  # noqa: F401  (fixture)


def request(model: str = "tiny-sd15", **changes: object) -> GenerationRequest:
    base = GenerationRequest(job_id=9, model=model, prompt="a red fox in snow", negative_prompt="blurry", width=64,
                             height=64, steps=2, guidance=5.0, seed=3)
    return replace(base, **changes)  # type: ignore[arg-type]


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


# ----- samplers -----


def test_every_a1111_sampler_name_maps_to_a_scheduler_with_a_class() -> None:
    assert set(A1111_SAMPLERS) >= {"Euler a", "Euler", "DPM++ 2M", "DPM++ 2M Karras", "DPM++ SDE Karras",
                                   "DPM++ 2M SDE", "DDIM", "UniPC", "LMS", "Heun", "LCM"}
    for name, key in A1111_SAMPLERS.items():
        assert scheduler_key(name) == key == scheduler_key(name.lower()) == scheduler_key(key)
        assert key in SCHEDULER_CLASSES
    assert scheduler_key("DPM++ 3M") is None


@pytest.mark.parametrize("name", [name for name in A1111_SAMPLERS if name != "LCM"] + ["LCM"])
def test_each_sampler_builds_and_runs_and_the_png_names_it(engine: Engine, name: str) -> None:
    key = A1111_SAMPLERS[name]
    spec = engine.registry.get("tiny-sd15")
    built = make_scheduler(replace(spec, scheduler=key), engine.cache.scheduler_config(spec, "cpu"))
    assert type(built) is SCHEDULER_CLASSES[key][0]
    result = engine.run(request(scheduler=key))
    text = read_parameters(result.images[0].png)
    sampler, schedule = SAMPLER_NAMES[key]
    keys = text.splitlines()[-1]
    if schedule:  # A1111's order: the schedule type right after the sampler
        assert f"Steps: 2, Sampler: {sampler}, Schedule type: {schedule}, CFG scale: 5, " in keys
    else:
        assert f"Steps: 2, Sampler: {sampler}, CFG scale: 5, " in keys and "Schedule type" not in keys
    assert pixels(result.images[0].png).std() > 0
    # The model's own scheduler is back for the next job.
    assert type(engine.pipeline("tiny-sd15").scheduler) is SCHEDULER_CLASSES[spec.scheduler][0]


@pytest.mark.parametrize("key", ["dpmpp-sde-karras", "dpmpp-2m-sde", "euler-a"])
def test_stochastic_samplers_repeat_with_the_seed(engine: Engine, key: str) -> None:
    first, again = engine.run(request(scheduler=key)), engine.run(request(scheduler=key))
    assert np.array_equal(pixels(first.images[0].png), pixels(again.images[0].png))
    other = engine.run(request(scheduler=key, seed=4))
    assert not np.array_equal(pixels(first.images[0].png), pixels(other.images[0].png))
    assert (request(scheduler=key).batch_key() is None) == (key == "dpmpp-sde-karras")


def test_samplers_are_refused_where_they_do_not_fit(tiny_registry: ModelRegistry) -> None:
    sd15, lightning = tiny_registry.get("tiny-sd15"), tiny_registry.get("tiny-sdxl-lightning")
    assert fit_scheduler(sd15, "DPM++ 2M Karras") == "dpmpp-2m-karras"
    with pytest.raises(RequestRefused, match="Unknown sampler 'Euler b'"):
        fit_scheduler(sd15, "Euler b")
    with pytest.raises(RequestRefused, match="LCM only works with models distilled for it"):
        fit_scheduler(sd15, "LCM")
    assert fit_scheduler(sd15, "LCM", lcm_lora=True) == "lcm"
    # Few-step models: Euler on trailing timesteps, never multistep or SDE samplers.
    assert fit_scheduler(lightning, "Euler") == "euler-trailing"
    assert fit_scheduler(lightning, "Euler a") == "euler-a-trailing"
    for name in ("DPM++ 2M Karras", "DPM++ SDE Karras", "Heun"):
        with pytest.raises(RequestRefused, match="few-step distilled model"):
            fit_scheduler(lightning, name)
    sd3 = next(spec for spec in tiny_registry.specs() if spec.kind == "sd3")
    with pytest.raises(RequestRefused, match="samples with its own scheduler only"):
        fit_scheduler(sd3, "Euler")


def test_models_toml_takes_a1111_sampler_names(tiny_models: Path, tmp_path: Path) -> None:
    source = Path(ModelRegistry.load(tiny_models).get("tiny-sd15").source)
    toml = tmp_path / "models.toml"
    toml.write_text(f'packaged = false\ndefault = "a"\n[models.a]\nkind = "sd15"\nsource = "{source}"\n'
                    'scheduler = "DPM++ SDE Karras"\n[models.b]\nkind = "sd15"\n'
                    f'source = "{source}"\nscheduler = "dpmpp-2m-karras"\n', encoding="utf-8")
    registry = ModelRegistry.load(toml)
    assert registry.get("a").scheduler == "dpmpp-sde-karras" and registry.get("b").scheduler == "dpmpp-2m-karras"
    assert (registry.get("a").sampler, registry.get("a").schedule_type) == ("DPM++ SDE", "Karras")


# ----- BREAK -----


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_break_starts_a_new_chunk(engine: Engine, model: str) -> None:
    pipe = engine.pipeline(model)
    broken = prompts.encode(pipe, "a red fox BREAK in the snow", "", guidance=7.0, device="cpu")
    joined = prompts.encode(pipe, "a red fox in the snow", "", guidance=7.0, device="cpu")
    assert "prompt" in joined.kwargs  # one plain chunk: the strings path
    embeds = broken.kwargs["prompt_embeds"]
    assert embeds.shape[1] == 2 * 77
    assert broken.kwargs["negative_prompt_embeds"].shape == embeds.shape
    # Each side of BREAK is its own padded chunk: the chunks are the two halves encoded alone
    # (``expand`` only forces the embeddings path for a comparison).

    def alone(text: str) -> torch.Tensor:
        return prompts.encode(pipe, text, "", guidance=7.0, device="cpu", expand=str).kwargs["prompt_embeds"]

    assert torch.allclose(embeds[:, :77], alone("a red fox "), atol=1e-5)
    assert torch.allclose(embeds[:, 77:], alone(" in the snow"), atol=1e-5)
    assert not torch.allclose(embeds[:, :77], alone("a red fox in the snow"), atol=1e-5)


def test_break_in_words_and_lowercase_is_text(engine: Engine) -> None:
    assert prompts.split_breaks([("a BREAKfast break BREAK b", 1.0)]) == [[("a BREAKfast break ", 1.0)], [(" b", 1.0)]]
    assert len(prompts.split_breaks([(" BREAK ".join("x" * 20), 1.0)])) == prompts.MAX_CHUNKS


def test_engine_break_changes_the_image(engine: Engine) -> None:
    plain = engine.run(request(prompt="a red fox in the snow"))
    broken = engine.run(request(prompt="a red fox BREAK in the snow"))
    assert not np.array_equal(pixels(plain.images[0].png), pixels(broken.images[0].png))
    assert read_parameters(broken.images[0].png).startswith("a red fox BREAK in the snow\n")


# ----- textual-inversion embeddings -----


@pytest.fixture(scope="module")
def ti_engine(tiny_registry: ModelRegistry, tiny_embeddings: Path) -> Engine:  # noqa: F811
    return Engine(tiny_registry, device="cpu", embeddings_dir=tiny_embeddings)


def test_the_library_finds_whole_words(tiny_embeddings: Path) -> None:  # noqa: F811
    folder = embeddings.EmbeddingLibrary(tiny_embeddings)
    assert folder.names() == ["sd15-one", "sd15-three", "sdxl-neg"]
    assert folder.used_in("a fox, sd15-one", "sd15-three") == ["sd15-one", "sd15-three"]
    assert folder.used_in("xsd15-one, sd15-ones, SD15-ONE") == []
    vectors = embeddings.read_vectors(tiny_embeddings / "sd15-three.safetensors")
    assert vectors[""].shape[0] == 3
    assert set(embeddings.read_vectors(tiny_embeddings / "sdxl-neg.safetensors")) == {"clip_l", "clip_g"}


@pytest.mark.parametrize(("model", "positive", "negative"), [
    ("tiny-sd15", "a red fox, sd15-one", "sd15-three"),
    ("tiny-sdxl", "a red fox", "sdxl-neg, blurry"),
])
def test_an_embedding_applies_for_its_job_only(ti_engine: Engine, tiny_embeddings: Path, model: str,  # noqa: F811
                                               positive: str, negative: str) -> None:
    pipe = ti_engine.pipeline(model)
    sizes = [len(pipe.tokenizer)] + ([len(pipe.tokenizer_2)] if hasattr(pipe, "tokenizer_2") else [])
    rows = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    before = ti_engine.run(request(model, prompt=positive, negative_prompt=negative))
    used = embeddings.EmbeddingLibrary(tiny_embeddings).used_in(positive, negative)
    with_ti = ti_engine.run(request(model, prompt=positive, negative_prompt=negative, embeddings=used))
    after = ti_engine.run(request(model, prompt=positive, negative_prompt=negative))
    assert not np.array_equal(pixels(before.images[0].png), pixels(with_ti.images[0].png))
    # The next job is the job on a pipeline that never saw the embedding.
    assert np.array_equal(pixels(before.images[0].png), pixels(after.images[0].png))
    assert [len(pipe.tokenizer)] + ([len(pipe.tokenizer_2)] if hasattr(pipe, "tokenizer_2") else []) == sizes
    assert pipe.text_encoder.get_input_embeddings().weight.shape[0] == rows
    text = read_parameters(with_ti.images[0].png)
    hashes = ", ".join(f"{name}: {embeddings.short_hash(tiny_embeddings / f)}" for name, f in
                       [(n, next(p.name for p in tiny_embeddings.iterdir() if p.stem == n)) for n in used])
    assert f'TI hashes: "{hashes}"' in text
    assert "TI hashes" not in read_parameters(after.images[0].png)


def test_an_embedding_for_another_family_is_refused(ti_engine: Engine) -> None:
    with pytest.raises(RequestRefused, match="'sdxl-neg' is made for SDXL models"):
        ti_engine.run(request("tiny-sd15", negative_prompt="sdxl-neg", embeddings=["sdxl-neg"]))
    # Nothing stayed behind from the refused job.
    pipe = ti_engine.pipeline("tiny-sd15")
    assert "sdxl-neg" not in pipe.tokenizer.get_vocab()
    with pytest.raises(RequestRefused, match="Unknown embedding 'nope'"):
        ti_engine.run(request("tiny-sd15", embeddings=["nope"]))
