"""Prompt syntax: A1111 emphasis read into fragments, compel conditioning, long prompts in chunks."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from inference import prompts
from inference.engine import Engine
from inference.types import GenerationRequest

# The tiny tokenizer is one token per character: 200 characters are 200 tokens, three chunks.
LONG = ", ".join(["a lighthouse on a cliff at dusk"] * 6)  # 191 characters


def _request(model: str = "tiny-sd15", **changes: object) -> GenerationRequest:
    base = GenerationRequest(job_id=1, model=model, prompt="a lighthouse at dusk", negative_prompt="blurry",
                             width=64, height=64, steps=2, seed=7)
    return replace(base, **changes)  # type: ignore[arg-type]


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize(("text", "expected"), [
    ("a red fox", [("a red fox", 1.0)]),
    ("a (red:1.5) fox", [("a ", 1.0), ("red", 1.5), (" fox", 1.0)]),
    ("(red)", [("red", 1.1)]),
    ("((red))", [("red", pytest.approx(1.21))]),
    ("[red]", [("red", pytest.approx(1 / 1.1))]),
    ("(red:0.5) and [(blue:1.2)]", [("red", 0.5), (" and ", 1.0), ("blue", pytest.approx(1.2 / 1.1))]),
    (r"\(not weighted\) a\:b", [("(not weighted) a:b", 1.0)]),
    ("(unclosed", [("unclosed", pytest.approx(1.1))]),
    ("stray) bracket]", [("stray) bracket]", 1.0)]),
    ("time 12:30", [("time 12:30", 1.0)]),
    ("", [("", 1.0)]),
])
def test_parse_emphasis_follows_a1111(text: str, expected: list[tuple[str, float]]) -> None:
    assert prompts.parse_emphasis(text) == expected


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_plain_prompt_keeps_the_old_path_and_compel_agrees_with_diffusers(engine: Engine, model: str) -> None:
    pipe = engine.pipeline(model)
    encoded = prompts.encode(pipe, "a red fox", "blurry", guidance=7.0, device="cpu")
    assert encoded.kwargs == {"prompt": "a red fox", "negative_prompt": "blurry"} and encoded.notes == []
    # The embeddings path gives the very tensors diffusers makes for the same plain prompt, so the
    # switch between the two paths is seamless.
    forced = prompts.encode(pipe, "a red fox", "(blurry:1.0001)", guidance=7.0, device="cpu").kwargs
    reference = pipe.encode_prompt("a red fox", device="cpu", num_images_per_prompt=1,
                                   do_classifier_free_guidance=False)[0]
    assert torch.equal(forced["prompt_embeds"], reference)


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_weighting_changes_only_the_weighted_tokens(engine: Engine, model: str) -> None:
    pipe = engine.pipeline(model)

    def embeds(text: str) -> torch.Tensor:
        return prompts.encode(pipe, text, "(x:1.01)", guidance=7.0, device="cpu").kwargs["prompt_embeds"]

    plain, up, down = embeds("a red fox"), embeds("a (red:1.5) fox"), embeds("a [red] fox")
    assert plain.shape == up.shape == down.shape == (1, 77, plain.shape[-1])
    # Tokens (one per character, spaces dropped): <bos> a r e d f o x; positions 2-4 carry "red".
    changed = (up - plain).abs().amax(dim=-1)[0]
    assert changed[2:5].min() > 0 and changed[:2].max() == 0
    assert not torch.equal(down, plain) and not torch.equal(down, up)


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_long_prompts_are_chunked_not_cut(engine: Engine, model: str) -> None:
    pipe = engine.pipeline(model)
    a = prompts.encode(pipe, LONG + ", red", "", guidance=7.0, device="cpu")
    b = prompts.encode(pipe, LONG + ", blue", "", guidance=7.0, device="cpu")
    assert a.notes == [] and a.tokens > 77
    assert a.kwargs["prompt_embeds"].shape[1] == 3 * 77
    # The words after the 77th token reach the conditioning (a plain call would have cut them).
    assert not torch.equal(a.kwargs["prompt_embeds"], b.kwargs["prompt_embeds"])
    # Positive and negative are padded to the same length (an empty SDXL negative is zeros).
    assert a.kwargs["negative_prompt_embeds"].shape == a.kwargs["prompt_embeds"].shape
    if model == "tiny-sdxl":
        assert not a.kwargs["negative_prompt_embeds"].any()
        assert a.kwargs["pooled_prompt_embeds"].shape == (1, 32)


def test_long_negative_pads_the_positive(engine: Engine) -> None:
    pipe = engine.pipeline("tiny-sd15")
    encoded = prompts.encode(pipe, "a fox", LONG, guidance=7.0, device="cpu")
    assert encoded.kwargs["prompt_embeds"].shape == encoded.kwargs["negative_prompt_embeds"].shape == (1, 231, 32)


def test_without_guidance_no_negative_is_encoded(engine: Engine) -> None:
    pipe = engine.pipeline("tiny-sdxl")
    encoded = prompts.encode(pipe, LONG, LONG, guidance=0.0, device="cpu")
    assert set(encoded.kwargs) == {"prompt_embeds", "pooled_prompt_embeds"}


def test_prompts_past_the_cap_are_cut_at_a_word_and_the_member_is_told(engine: Engine) -> None:
    pipe = engine.pipeline("tiny-sd15")
    words = " ".join(["lighthouse"] * 80)  # 800 tokens: one per letter
    encoded = prompts.encode(pipe, words, words, guidance=7.0, device="cpu")
    assert encoded.tokens <= prompts.MAX_TOKENS and encoded.tokens > prompts.MAX_TOKENS - 11
    assert encoded.notes[0].startswith("The prompt is 800 tokens long; only the first ")
    assert encoded.notes[1].startswith("The negative prompt is 800 tokens long")
    assert encoded.kwargs["prompt_embeds"].shape[1] <= (prompts.MAX_CHUNKS + 1) * 77


def test_engine_plain_prompt_image_is_what_the_pipeline_gives_for_the_strings(engine: Engine) -> None:
    result = engine.run(_request())
    pipe = engine.pipeline("tiny-sd15")
    direct = pipe(prompt="a lighthouse at dusk", negative_prompt="blurry", width=64, height=64,
                  num_inference_steps=2, guidance_scale=7.0, generator=[torch.Generator("cpu").manual_seed(7)],
                  output_type="pil").images[0]
    assert np.array_equal(_pixels(result.images[0].png), np.asarray(direct))


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl", "tiny-sdxl-lightning", "tiny-sdxl-turbo"])
def test_engine_weighted_and_long_prompts_change_the_image(engine: Engine, model: str) -> None:
    steps = min(2, engine.registry.get(model).max_steps)
    plain = engine.run(_request(model, steps=steps))
    weighted = engine.run(_request(model, steps=steps, prompt="a (lighthouse:1.6) at dusk"))
    assert not np.array_equal(_pixels(plain.images[0].png), _pixels(weighted.images[0].png))
    assert weighted.parameters.startswith("a (lighthouse:1.6) at dusk\n")
    long_a = engine.run(_request(model, steps=steps, prompt=LONG + ", red"))
    long_b = engine.run(_request(model, steps=steps, prompt=LONG + ", blue"))
    assert not np.array_equal(_pixels(long_a.images[0].png), _pixels(long_b.images[0].png))
    assert long_a.notes == []


def test_engine_notes_a_dropped_tail_and_img2img_takes_weights(engine: Engine) -> None:
    from inference.media import encode_job_image

    result = engine.run(_request(prompt=" ".join(["lighthouse"] * 80), count=2))
    assert len(result.notes) == 1 and "800 tokens" in result.notes[0]
    init = encode_job_image(Image.new("RGB", (64, 64), (200, 40, 40)))
    plain = engine.run(_request(task="img2img", init_image=init, strength=0.8, steps=4))
    weighted = engine.run(_request(task="img2img", init_image=init, strength=0.8, steps=4,
                                   prompt="a (lighthouse:1.6) at dusk, " + LONG))
    assert not np.array_equal(_pixels(plain.images[0].png), _pixels(weighted.images[0].png))
