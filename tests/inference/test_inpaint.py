"""Inpainting (canvas edits) on the tiny models: a dedicated 9-channel model and a base model's own
weights, the canvas's size kept, the source exact away from the mask, and what is refused."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from inference.canvas import encode_mask, paste_back, seam_alpha
from inference.engine import Engine
from inference.limits import MAX_CANVAS_SIDE, SIZE_GRID
from inference.media import encode_job_image, read_parameters
from inference.models import TEXT_TO_IMAGE_KINDS, ModelRegistry, RequestRefused
from inference.runners import inpaint
from inference.types import GenerationRequest, JobCancelled

CANVAS = (160, 96)


def _canvas(size: tuple[int, int] = CANVAS, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8))


def _left_strip(size: tuple[int, int] = CANVAS, width: int = 40) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, (0, 0, width, size[1]))
    return mask


def _request(registry: ModelRegistry, model: str, image: Image.Image | None = None, mask: Image.Image | None = None,
             **changes: object) -> GenerationRequest:
    image = image or _canvas()
    width, height = registry.get(model).size_for_canvas(*image.size)
    base = GenerationRequest(job_id=8, model=model, prompt="a lighthouse", width=width, height=height, steps=4, seed=3,
                             task="inpaint", init_image=encode_job_image(image),
                             mask_image=encode_mask(mask or _left_strip(image.size)), strength=1.0, mask_blur=8)
    return replace(base, **changes)  # type: ignore[arg-type]


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


# tiny-sd15 and tiny-animagine inpaint with their own weights; tiny-sdxl links tiny-sdxl-inpaint;
# tiny-sd15-inpaint is a dedicated model named directly.
@pytest.mark.parametrize(("model", "ran"), [("tiny-sd15", "tiny-sd15"), ("tiny-animagine", "tiny-animagine"),
                                            ("tiny-sdxl", "tiny-sdxl-inpaint"),
                                            ("tiny-sd15-inpaint", "tiny-sd15-inpaint")])
def test_canvas_size_kept_and_source_exact_away_from_the_mask(engine: Engine, model: str, ran: str) -> None:
    source = np.asarray(_canvas()).astype(np.int16)
    result = engine.run(_request(engine.registry, model))
    image = result.images[0]
    assert (image.width, image.height) == CANVAS
    out = _pixels(image.png)
    # The strip is 40 px wide and the seam 8 px: from x = 49 on every pixel is the source's own.
    assert np.array_equal(out[:, 49:], source[:, 49:])
    assert np.abs(out[:, :40] - source[:, :40]).mean() > 10  # the masked strip was redrawn
    assert not np.array_equal(out[:, 40:48], source[:, 40:48])  # the seam blends
    params = read_parameters(image.png)
    assert f"Model: {ran}," in params and "Size: 160x96" in params
    assert "Denoising strength: 1, Mask blur: 8" in params


def test_dedicated_model_is_nine_channels_and_the_base_path_shares_the_resident_weights(engine: Engine) -> None:
    engine.run(_request(engine.registry, "tiny-sdxl"))
    dedicated = engine.cache.get(engine.registry.get("tiny-sdxl-inpaint"), "cpu")
    assert dedicated.unet.config.in_channels == 9
    engine.run(_request(engine.registry, "tiny-sd15"))
    pipe, derived = inpaint.pipelines(engine, engine.registry.get("tiny-sd15"))
    assert type(derived).__name__ == "StableDiffusionInpaintPipeline"
    assert derived.unet is pipe.unet and derived.vae is pipe.vae and derived.text_encoder is pipe.text_encoder
    assert derived.unet.config.in_channels == 4


def test_same_seed_reproduces_and_the_mask_decides_what_changes(engine: Engine) -> None:
    registry = engine.registry
    a = _pixels(engine.run(_request(registry, "tiny-sd15")).images[0].png)
    b = _pixels(engine.run(_request(registry, "tiny-sd15")).images[0].png)
    assert np.array_equal(a, b)
    right = Image.new("L", CANVAS, 0)
    right.paste(255, (120, 0, 160, 96))
    c = _pixels(engine.run(_request(registry, "tiny-sd15", mask=right)).images[0].png)
    source = np.asarray(_canvas()).astype(np.int16)
    assert np.array_equal(c[:, :111], source[:, :111]) and not np.array_equal(c[:, 120:], source[:, 120:])


def test_region_edit_with_low_strength_stays_near_the_source_and_counts_only_its_steps(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    centre = Image.new("L", CANVAS, 0)
    centre.paste(255, (40, 24, 120, 72))
    low = engine.run(_request(engine.registry, "tiny-sd15", mask=centre, strength=0.25, steps=8),
                     on_step=lambda s, t: seen.append((s, t)))
    assert seen == [(1, 2), (2, 2)]
    high = engine.run(_request(engine.registry, "tiny-sd15", mask=centre, strength=1.0, steps=8))
    source = np.asarray(_canvas()).astype(np.int16)[24:72, 40:120]
    assert (np.abs(_pixels(low.images[0].png)[24:72, 40:120] - source).mean()
            < np.abs(_pixels(high.images[0].png)[24:72, 40:120] - source).mean())
    assert "Denoising strength: 0.25" in read_parameters(low.images[0].png)


def test_count_gives_seed_plus_i_each_at_the_canvas_size(engine: Engine) -> None:
    result = engine.run(_request(engine.registry, "tiny-sd15", count=2))
    assert [im.seed for im in result.images] == [3, 4]
    assert all((im.width, im.height) == CANVAS for im in result.images) and result.grid_png is not None
    alone = engine.run(_request(engine.registry, "tiny-sd15", seed=4))
    assert np.array_equal(_pixels(result.images[1].png), _pixels(alone.images[0].png))


def test_cancel_stops_between_steps(engine: Engine) -> None:
    steps: list[int] = []
    with pytest.raises(JobCancelled):
        engine.run(_request(engine.registry, "tiny-sdxl", steps=6), on_step=lambda s, t: steps.append(s),
                   is_cancelled=lambda: len(steps) >= 2)
    assert steps == [1, 2]


def test_max_strength_of_an_entry_caps_the_strength_it_runs(engine: Engine, tiny_models) -> None:  # type: ignore[no-untyped-def]
    text = tiny_models.read_text().replace('source = "tiny-sdxl-inpaint"\n', 'source = "tiny-sdxl-inpaint"\nmax_strength = 0.5\n')
    path = tiny_models.parent / "capped.toml"
    path.write_text(text)
    capped = Engine(ModelRegistry.load(path), "cpu", cache=engine.cache)
    result = capped.run(_request(capped.registry, "tiny-sdxl"))
    assert "Denoising strength: 0.5," in read_parameters(result.images[0].png)


@pytest.mark.parametrize(("changes", "needle"), [
    ({"mask_image": None}, "needs a mask"),
    ({"init_image": None}, "needs an input image"),
    ({"mask_blur": -1}, "Mask blur must be"),
    ({"mask_blur": 65}, "you asked for 65"),
    ({"mask_image": encode_mask(Image.new("L", (96, 96), 255))}, "The mask is 96x96 but the image is 160x96"),
    ({"mask_image": encode_mask(Image.new("L", CANVAS, 0))}, "nothing to redraw"),
    ({"mask_image": "bm90IGFuIGltYWdl"}, "The mask cannot be read"),
    ({"width": 100}, "multiples of 8"),
    ({"prompt": " "}, "prompt is empty"),
])
def test_bad_requests_are_refused(engine: Engine, changes: dict, needle: str) -> None:
    with pytest.raises(RequestRefused, match=needle):
        engine.run(_request(engine.registry, "tiny-sd15", **changes))


def test_canvas_beyond_the_largest_side_is_refused(engine: Engine) -> None:
    wide = Image.new("RGB", (MAX_CANVAS_SIDE + 8, 8))
    with pytest.raises(RequestRefused, match=f"stop at {MAX_CANVAS_SIDE} px"):
        engine.run(_request(engine.registry, "tiny-sd15", image=wide, width=512, height=64))


def test_inpainting_entries_draw_no_text_to_image(engine: Engine) -> None:
    spec = engine.registry.get("tiny-sd15-inpaint")
    assert spec.kind not in TEXT_TO_IMAGE_KINDS
    for task in ("txt2img", "img2img"):
        with pytest.raises(RequestRefused, match="cannot run a"):
            engine.run(replace(_request(engine.registry, "tiny-sd15-inpaint"), task=task))  # type: ignore[arg-type]


def test_size_for_canvas_keeps_the_aspect_within_the_budget(tiny_registry: ModelRegistry) -> None:
    sd15 = tiny_registry.get("tiny-sd15")
    assert sd15.size_for_canvas(512, 512) == (512, 512)
    assert sd15.size_for_canvas(768, 512) == (640, 448)  # a pan right of a square
    for width, height in ((768, 512), (512, 1536), (1000, 333), (4096, 64)):
        w, h = sd15.size_for_canvas(width, height)
        assert w % SIZE_GRID == 0 and h % SIZE_GRID == 0
        assert abs(w / h - width / height) / (width / height) < 0.25 or min(w, h) == SIZE_GRID
        assert abs(w * h - 512 * 512) <= 512 * 512 * 0.2 or min(w, h) == SIZE_GRID
    assert max(tiny_registry.get("tiny-sdxl").size_for_canvas(4096, 16)) <= MAX_CANVAS_SIDE
    with pytest.raises(ValueError, match="positive size"):
        sd15.size_for_canvas(0, 10)


def test_seam_alpha_is_exact_beyond_the_blur_and_full_inside() -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 20, 40, 40))
    alpha = seam_alpha(mask, 6)
    assert (alpha[20:40, 20:40] == 1).all()
    yy, xx = np.mgrid[:64, :64]
    dx = np.maximum(np.maximum(20 - xx, xx - 39), 0)
    dy = np.maximum(np.maximum(20 - yy, yy - 39), 0)
    distance = np.hypot(dx, dy)
    assert (alpha[distance > 6] == 0).all() and (alpha[(distance > 0) & (distance < 6)] > 0).all()
    assert np.all(np.diff(alpha[30, 40:46]) < 0)  # falls off smoothly
    assert np.array_equal(seam_alpha(mask, 0), (np.asarray(mask) >= 128).astype(np.float32))
    source, generated = _canvas((64, 64), 1), _canvas((32, 32), 2)
    out = np.asarray(paste_back(source, generated, alpha))
    assert np.array_equal(out[distance > 6], np.asarray(source)[distance > 6])
    assert out.shape == (64, 64, 3)
