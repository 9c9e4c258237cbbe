"""Canvas edits, hires fix and tiles end to end with the tiny models: delivered sizes, the pixels kept
outside the mask, the region's cells, /edit, Rerun reproducing an edit."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bot.params import canvas
from db.models import JobStatus
from inference.limits import DEFAULT_MASK_BLUR
from inference.media import read_parameters
from inference.testing.seams import seam_difference
from tests.e2e.helpers import has_image, png_bytes
from tests.e2e.test_canvas_ui import imagine, input_id, open_region_modal

# Pixels this far from the mask's edge are outside the soft seam: they must equal the source's exactly.
MARGIN = 3 * DEFAULT_MASK_BLUR


def pixels(message, which: int = 0) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(Image.open(io.BytesIO(message.attachments[which].data)).convert("RGB"))


async def press(fake, message, custom_id: str):  # type: ignore[no-untyped-def]
    click = await fake.click(message.id, custom_id, user_id=fake.user_id)
    await click.wait_for(lambda i: has_image(i.original), timeout=120)
    return click.original


async def test_zoom_and_pan_keep_the_source_outside_the_mask(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot)
        source = pixels(result)
        assert source.shape == (512, 512, 3)

        zoomed = await press(fake, result, f"atelier:zoom2:{parent.id}")
        out = pixels(zoomed)
        assert out.shape == source.shape  # zoom keeps the size
        expected = np.asarray(canvas.zoom_out(Image.fromarray(source), 2.0).image)
        inner = slice(128 + canvas.OVERLAP + MARGIN, 384 - canvas.OVERLAP - MARGIN)
        assert np.array_equal(out[inner, inner], expected[inner, inner])
        assert not np.array_equal(out[:100], expected[:100])  # the border was drawn
        job = await bot.service.job_for_message(zoomed.id)
        assert job.command == "edit" and job.parent_job_id == parent.id and job.status == JobStatus.completed
        assert read_parameters(zoomed.attachments[0].data).startswith("a lighthouse on a cliff")
        fields = {f["name"]: f["value"] for f in zoomed.embeds[0]["fields"]}
        assert fields["Size"] == "512×512" and fields["Image"].startswith(f"Zoom Out 2x of image 1 of job #{parent.id}")

        right = await press(fake, result, f"atelier:right:{parent.id}")
        out = pixels(right)
        assert out.shape == (512, 768, 3)  # grew by half to the right
        keep = 512 - canvas.OVERLAP - MARGIN
        assert np.array_equal(out[:, :keep], source[:, :keep])

        # Repeatable: ⬆️ on the pan's own result grows it upwards.
        pan = await bot.service.job_for_message(right.id)
        up = await press(fake, right, f"atelier:up:{pan.id}")
        out = pixels(up)
        assert out.shape == (768, 768, 3)
        assert np.array_equal(out[256 + canvas.OVERLAP + MARGIN:], pixels(right)[canvas.OVERLAP + MARGIN:])

        # Reroll draws the border anew (a new seed) around the same kept centre.
        reroll = await press(fake, zoomed, f"atelier:reroll:{job.id}")
        again = await bot.service.job_for_message(reroll.id)
        assert again.seed != job.seed and again.command == "edit" and again.params["canvas"]["op"] == "zoom"
        assert np.array_equal(pixels(reroll)[inner, inner], expected[inner, inner])
        assert not np.array_equal(pixels(reroll), pixels(zoomed))

        # Rerun reproduces the pan exactly: same canvas, mask and seed.
        rerun = await press(fake, right, f"atelier:acct:rerun:{pan.id}")
        assert np.array_equal(pixels(rerun), pixels(right))


async def test_region_redraws_the_chosen_cells_with_the_modal_prompt(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot)
        source = pixels(result)
        _, redraw = await open_region_modal(fake, result, parent.id, ["4"])
        submitted = await fake.submit_modal(redraw, {input_id(redraw.modal): "a lighthouse in a storm"})
        await submitted.wait_for(lambda i: has_image(i.original), timeout=120)
        out = pixels(submitted.original)
        assert out.shape == source.shape
        x0, y0, x1, y1 = canvas.cell_box((512, 512), 4)
        outside = np.ones((512, 512), dtype=bool)
        outside[y0 - MARGIN:y1 + MARGIN, x0 - MARGIN:x1 + MARGIN] = False
        assert np.array_equal(out[outside], source[outside])
        assert not np.array_equal(out[y0 + MARGIN:y1 - MARGIN, x0 + MARGIN:x1 - MARGIN],
                                  source[y0 + MARGIN:y1 - MARGIN, x0 + MARGIN:x1 - MARGIN])
        params = read_parameters(submitted.original.attachments[0].data)
        assert params.startswith("a lighthouse in a storm")


async def test_edit_redraws_the_white_of_a_members_mask(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    photo = Image.fromarray(np.random.default_rng(3).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 48), 0)  # half size, same shape: resized
    mask.paste(255, (32, 0, 64, 48))  # the right half
    async with start_bot() as bot:
        inter = await fake.slash("edit", {"prompt": "a red door", "seed": 5},
                                 attachments={"image": ("photo.png", png_bytes(photo), "image/png"),
                                              "mask": ("mask.png", png_bytes(mask), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        out = pixels(inter.original)
        assert out.shape == (96, 128, 3)
        keep = 64 - MARGIN
        assert np.array_equal(out[:, :keep], np.asarray(photo)[:, :keep])
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "edit" and job.seed == 5 and job.params["source"] == {"attachment": "photo.png"}


async def test_hires_doubles_and_a_tile_wraps(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        hires = await fake.slash("imagine", {"prompt": "a brick wall", "seed": 4, "steps": 2, "hires": 2.0},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await hires.wait_for(lambda i: has_image(i.original), timeout=120)
        assert pixels(hires.original).shape == (1024, 1024, 3)
        text = read_parameters(hires.original.attachments[0].data)
        assert "Hires upscale: 2" in text and "Denoising strength: 0.4" in text
        fields = {f["name"]: f["value"] for f in hires.original.embeds[0]["fields"]}
        assert fields["Size"] == "1024×1024" and fields["Hires fix"] == "2x at strength 0.4"

        tiles = {}
        for tile in (True, False):
            inter = await fake.slash("imagine", {"prompt": "a brick wall", "seed": 4, "steps": 2, "tile": tile},
                                     user_id=fake.user_id, channel_id=fake.channel_id)
            await inter.wait_for(lambda i: has_image(i.original), timeout=120)
            tiles[tile] = inter.original
        tiled = tiles[True]
        assert len(tiled.attachments) == 2 and tiled.attachments[1].filename.endswith("_tiled_2x2.png")
        assert len(tiles[False].attachments) == 1
        assert "Tiling: True" in read_parameters(tiled.attachments[0].data)

        # Opposite edges of the tile are as alike as neighbouring columns; a plain image's are not.
        tile_image, plain = Image.fromarray(pixels(tiled)), Image.fromarray(pixels(tiles[False]))
        assert seam_difference(tile_image) < seam_difference(plain) / 3
        preview = pixels(tiled, 1)
        assert preview.shape == (1024, 1024, 3) and np.array_equal(preview[:512, :512], pixels(tiled))


async def test_a_pan_on_sdxl_runs_its_dedicated_inpainting_model(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot, model="tiny-sdxl")
        source = pixels(result)
        assert source.shape == (256, 256, 3)
        left = await press(fake, result, f"atelier:left:{parent.id}")
        out = pixels(left)
        assert out.shape == (256, 384, 3)  # grew by half to the left
        start = 128 + canvas.OVERLAP + MARGIN
        assert np.array_equal(out[:, start:], source[:, start - 128:])
        text = read_parameters(left.attachments[0].data)
        assert "Model: tiny-sdxl-inpaint" in text and "Mask blur: 8" in text, text
