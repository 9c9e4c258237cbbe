"""Canvas edits as images and masks (bot/params/canvas.py): sizes, masks, refusals, the region grid."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from bot.errors import InvalidOption
from bot.params import canvas
from bot.services.imagine_checks import hires_size, imagine_params
from bot.services.quotas import job_credits
from inference.limits import MAX_CANVAS_SIDE


def _spec(side: int):  # type: ignore[no-untyped-def]
    from inference.models import ModelSpec

    return ModelSpec(name="m", kind="sd15", source="x", steps=4, guidance=5.0, scheduler="euler", width=side,
                     height=side, max_steps=50, max_count=4)


def _noise(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8))


def test_zoom_out_keeps_the_size_and_masks_the_border() -> None:
    image = _noise(512, 384)
    edit = canvas.zoom_out(image, 2.0)
    assert edit.size == (512, 384) and edit.mask.size == (512, 384)
    mask = np.asarray(edit.mask)
    # The shrunken image sits in the centre: 256x192 at (128, 96); the mask is black inside it less the overlap.
    o = canvas.OVERLAP
    assert (mask[96 + o:96 + 192 - o, 128 + o:128 + 256 - o] == 0).all()
    assert mask[:96].min() == 255 and mask[:, :128].min() == 255 and mask[96 + o - 1, 200] == 255
    shrunk = np.asarray(image.resize((256, 192), Image.Resampling.LANCZOS))
    assert np.array_equal(np.asarray(edit.image)[96:288, 128:384], shrunk)
    assert canvas.zoom_out(image, 1.5).edit == {"op": "zoom", "factor": 1.5}
    with pytest.raises(InvalidOption, match=r"Zoom Out takes 2x or 1\.5x"):
        canvas.zoom_out(image, 3.0)


@pytest.mark.parametrize(("direction", "size", "at"), [
    ("left", (768, 512), (256, 0)), ("right", (768, 512), (0, 0)),
    ("up", (512, 768), (0, 256)), ("down", (512, 768), (0, 0)),
])
def test_pan_grows_by_half_towards_the_direction(direction, size, at) -> None:  # type: ignore[no-untyped-def]
    image = _noise(512, 512)
    edit = canvas.pan(image, direction)
    assert edit.size == size
    pixels = np.asarray(edit.image)
    assert np.array_equal(pixels[at[1]:at[1] + 512, at[0]:at[0] + 512], np.asarray(image))
    mask = np.asarray(edit.mask) > 0
    # Masked: the new 256 px strip and OVERLAP px of the old image; nothing else.
    assert mask.sum() == (256 + canvas.OVERLAP) * 512
    kept = mask[at[1]:at[1] + 512, at[0]:at[0] + 512]
    assert kept.sum() == canvas.OVERLAP * 512


def test_pans_stop_at_the_largest_canvas_and_at_strips() -> None:
    with pytest.raises(InvalidOption, match=f"at most {MAX_CANVAS_SIDE} pixels on a side"):
        canvas.pan(Image.new("RGB", (2800, 1400)), "right")
    with pytest.raises(InvalidOption, match="more than 4 times as long"):
        canvas.pan(Image.new("RGB", (1800, 512)), "left")


def test_region_cells_map_to_the_mask() -> None:
    mask = np.asarray(canvas.region_mask((300, 150), [0, 4]))
    assert (mask[0:50, 0:100] == 255).all() and (mask[50:100, 100:200] == 255).all()
    assert mask.sum() == 255 * 2 * 100 * 50
    assert canvas.cell_box((300, 150), 8) == (200, 100, 300, 150)
    with pytest.raises(InvalidOption, match="at least one cell"):
        canvas.region_mask((300, 150), [])
    with pytest.raises(InvalidOption, match="All nine cells"):
        canvas.check_cells(list(range(9)))


def test_region_preview_outlines_the_chosen_cells() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (768, 768), (0, 0, 0)).save(buffer, format="PNG")
    plain = np.asarray(Image.open(io.BytesIO(canvas.region_preview(buffer.getvalue(), []))))
    marked = np.asarray(Image.open(io.BytesIO(canvas.region_preview(buffer.getvalue(), [4]))))
    assert plain.shape == (384, 384, 3)
    changed = np.argwhere((plain != marked).any(axis=2))
    # Only the centre cell's outline differs.
    assert changed[:, 0].min() >= 128 and changed[:, 0].max() < 256
    assert changed[:, 1].min() >= 128 and changed[:, 1].max() < 256
    assert (marked[changed[:, 0], changed[:, 1]] == canvas.OUTLINE).all()


def test_member_masks_are_checked() -> None:
    image = Image.new("RGB", (256, 128))
    half = Image.new("L", (128, 64), 0)
    half.paste(200, (0, 0, 64, 64))
    binary = canvas.check_mask(image, half.convert("RGB"))
    assert binary.size == (256, 128) and set(np.unique(np.asarray(binary))) == {0, 255}
    with pytest.raises(InvalidOption, match="all black"):
        canvas.check_mask(image, Image.new("L", (256, 128), 20))
    with pytest.raises(InvalidOption, match="all white"):
        canvas.check_mask(image, Image.new("L", (256, 128), 250))
    with pytest.raises(InvalidOption, match="must have the same shape"):
        canvas.check_mask(image, Image.new("L", (128, 128), 255))


def test_inpaint_params_carry_canvas_mask_and_the_source_prompt() -> None:
    base = {"model": "m", "prompt": "a lake", "negative_prompt": "", "steps": 4, "guidance": 5.0, "seed": 1,
            "count": 4, "width": 512, "height": 512, "inputs": {"init_image": 3}, "aspect": "1:1", "hires": 2.0}
    edit = canvas.pan(_noise(512, 512), "up")
    spec = _spec(512)
    params = canvas.inpaint_params(base, edit, spec=spec, strength=1.0, source={"job_id": 9, "index": 0})
    assert params["task"] == "inpaint" and params["count"] == 1 and params["prompt"] == "a lake"
    assert (params["width"], params["height"]) == (448, 640)
    assert params["canvas"] == {"op": "pan", "direction": "up", "width": 512, "height": 768}
    assert "inputs" not in params and "aspect" not in params and "hires" not in params
    mask = Image.open(io.BytesIO(base64.b64decode(params["mask_image"])))
    assert mask.mode == "L" and mask.size == (512, 768)
    assert canvas.describe(params) == "Image 1 of job #9 extended up (512×768)"
    again = canvas.inpaint_params(base, edit, spec=spec, strength=1.0, source={}, prompt="a sea", seed=5)
    assert again["prompt"] == "a sea" and again["seed"] == 5


def test_tile_preview_repeats_the_tile_two_by_two() -> None:
    buffer = io.BytesIO()
    tile = _noise(64, 48)
    tile.save(buffer, format="PNG")
    sheet = np.asarray(Image.open(io.BytesIO(canvas.tile_preview(buffer.getvalue()))))
    assert sheet.shape == (96, 128, 3)
    assert np.array_equal(sheet[48:, 64:], np.asarray(tile))


def test_hires_options_are_checked() -> None:
    from bot.params.imagine import ImagineOptions
    from inference.models import ModelRegistry

    registry = ModelRegistry.load()  # the packaged registry: its specs only, nothing is loaded
    params = imagine_params(registry, ImagineOptions(prompt="a fox", hires=2.0, tile=True, seed=1))
    assert params["hires"] == 2.0 and params["hires_strength"] == 0.4 and params["tile"] is True
    assert hires_size(params["width"], params["height"], 2.0) == (2 * params["width"], 2 * params["height"])
    assert hires_size(512, 512, 1.5) == (768, 768)
    # The second pass is counted: 2x the sides at 0.4 of the steps.
    plain = {k: v for k, v in params.items() if k not in ("hires", "hires_strength")}
    assert job_credits(params) > job_credits(plain)
    with pytest.raises(InvalidOption, match=r"Hires must be 1\.5 or 2"):
        imagine_params(registry, ImagineOptions(prompt="a fox", hires=3.0))
    with pytest.raises(InvalidOption, match=r"only applies with .hires."):
        imagine_params(registry, ImagineOptions(prompt="a fox", hires_strength=0.5))
    with pytest.raises(InvalidOption, match="Hires strength must be"):
        imagine_params(registry, ImagineOptions(prompt="a fox", hires=1.5, hires_strength=1.5))


def test_hires_beyond_the_largest_side_is_refused() -> None:
    from bot.params.imagine import ImagineOptions
    from inference.models import ModelRegistry

    registry = ModelRegistry([_spec(2560)], "m")
    assert "hires" in imagine_params(registry, ImagineOptions(prompt="a fox", hires=1.5))
    with pytest.raises(InvalidOption, match=r"would make this image 5120×5120; images stop at 4096"):
        imagine_params(registry, ImagineOptions(prompt="a fox", hires=2.0))
