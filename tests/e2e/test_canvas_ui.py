"""Canvas edits through the fake Discord, the parts that need no inpainting run: the buttons'
layout, the Vary (Region) menu, its modal and the moderation of the modal's prompt, /edit's
attachment checks, and Remix opening a modal first."""

from __future__ import annotations

import asyncio
import io

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from bot.params.canvas import OUTLINE
from db.models import Job
from db.models_moderation import ModerationCase
from db.repositories import jobs as jobs_repo
from tests.e2e.helpers import has_image, png_bytes

ARROWS = ("⬅️", "➡️", "⬆️", "⬇️")


def text_of(message) -> str:  # type: ignore[no-untyped-def]
    parts = [message.content or ""]
    for embed in message.embeds:
        parts += [embed.get("title", ""), embed.get("description", "")]
    return " ".join(parts)


def labels(message) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[c.get("label") or c.get("emoji", {}).get("name", "") for c in row["components"]]
            for row in message.components]


def input_id(modal: dict) -> str:  # type: ignore[type-arg]
    return next(c["custom_id"] for row in modal["components"] for c in row["components"])


def input_value(modal: dict) -> str:  # type: ignore[type-arg]
    return next(c.get("value", "") for row in modal["components"] for c in row["components"])


async def jobs_of(bot, command: str) -> list[Job]:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return list((await s.execute(select(Job).where(Job.command == command).order_by(Job.id))).scalars())


async def imagine(fake, bot, prompt: str = "a lighthouse on a cliff", *, user_id: int | None = None,  # type: ignore[no-untyped-def]
                  **options):
    inter = await fake.slash("imagine", {"prompt": prompt, "seed": 7, "steps": 2, **options},
                             user_id=user_id or fake.user_id, channel_id=fake.channel_id)
    await inter.wait_for(lambda i: has_image(i.original), timeout=60)
    return inter.original, await bot.service.job_for_message(inter.original.id)


async def open_region_modal(fake, message, job_id: int, cells: list[str]):  # type: ignore[no-untyped-def]
    """Vary (Region) -> the private menu -> pick ``cells`` -> Redraw; returns (menu message, Redraw click)."""
    click = await fake.click(message.id, f"atelier:region:{job_id}", user_id=fake.user_id)
    await click.wait_acked(3)
    menu = click.original
    assert menu.ephemeral and menu.attachments[0].filename == "region.png"
    assert menu.custom_ids == [f"atelier:cells:{job_id}:0"]
    pick = await fake.click(menu.id, f"atelier:cells:{job_id}:0", user_id=fake.user_id, values=cells)
    await pick.wait_acked(3)
    redraw_id = f"atelier:redraw:{job_id}:0:{''.join(str(int(c) + 1) for c in sorted(cells))}"
    assert menu.custom_ids == [f"atelier:cells:{job_id}:0", redraw_id], menu.custom_ids
    redraw = await fake.click(menu.id, redraw_id, user_id=fake.user_id)
    await redraw.wait_acked(3)
    assert redraw.modal is not None
    return menu, redraw


async def test_buttons_and_the_region_menu_make_a_masked_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    # A long cooldown: the Vary (Region) button counts once; picking cells, Redraw and the modal do not.
    # (The result is the server owner's, so the member's own cooldown starts at the button.)
    async with start_bot(cooldown=60) as bot:
        result, parent = await imagine(fake, bot, user_id=fake.owner_id)
        rows = labels(result)
        assert rows[1][1:] == ["Vary (Region)", "Zoom Out 2x", "Zoom Out 1.5x"] and rows[2] == list(ARROWS)
        assert all(len(row) <= 5 for row in rows) and len(rows) <= 5
        assert all(len(cid) <= 100 for cid in result.custom_ids)

        menu, redraw = await open_region_modal(fake, result, parent.id, ["0", "4"])
        # The preview outlines the picked cells: its centre cell changed, its bottom-right did not.
        preview = np.asarray(Image.open(io.BytesIO(menu.attachments[0].data)))
        assert preview.shape[:2] == (384, 384)
        outlined = (preview == OUTLINE).all(axis=2)
        assert outlined[128:256, 128:256].any() and outlined[0:128, 0:128].any()
        assert not outlined[256:, 256:].any() and not outlined[0:128, 256:].any()
        assert input_value(redraw.modal) == "a lighthouse on a cliff"
        submitted = await fake.submit_modal(redraw, {input_id(redraw.modal): "a lighthouse at night"})
        await submitted.wait_acked(3)
        assert not submitted.ephemeral
        edits = await wait_jobs(bot, "edit", 1)
        job = edits[0]
        assert job.parent_job_id == parent.id and job.prompt == "a lighthouse at night"
        assert job.params["task"] == "inpaint" and job.params["canvas"]["cells"] == [0, 4]
        assert job.params["source"] == {"job_id": parent.id, "index": 0}
        async with bot.service.sessions() as s:
            stored = await jobs_repo.get_inputs(s, job_id=job.id)
        mask = np.asarray(Image.open(io.BytesIO(stored["mask_image"])))
        w, h = job.params["canvas"]["width"], job.params["canvas"]["height"]
        assert mask.shape == (h, w)
        expected = np.zeros((h, w), dtype=np.uint8)
        expected[0:round(h / 3), 0:round(w / 3)] = 255
        expected[round(h / 3):round(2 * h / 3), round(w / 3):round(2 * w / 3)] = 255
        assert np.array_equal(mask, expected)


async def wait_jobs(bot, command: str, count: int, timeout: float = 10.0) -> list[Job]:  # type: ignore[no-untyped-def]
    found: list[Job] = []
    for _ in range(int(timeout / 0.05)):
        found = await jobs_of(bot, command)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} /{command} jobs, found {len(found)}")


async def test_a_refused_modal_prompt_is_refused_with_its_reason(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot)
        _, redraw = await open_region_modal(fake, result, parent.id, ["8"])
        submitted = await fake.submit_modal(redraw, {input_id(redraw.modal): "explicit sex scene on a beach"})
        await submitted.wait_acked(3)
        await submitted.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=10)
        assert submitted.ephemeral
        assert "Prompt refused" in text_of(submitted.original) and "sexual" in text_of(submitted.original)
        assert await jobs_of(bot, "edit") == []
        async with bot.service.sessions() as s:
            case = (await s.execute(select(ModerationCase))).scalars().one()
        assert case.prompt == "explicit sex scene on a beach" and case.action == "block"


async def test_edit_refuses_wrong_masks_with_their_reason(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    image = ("photo.png", png_bytes(Image.new("RGB", (128, 96), (40, 90, 160))), "image/png")
    cases = [
        (("mask.png", png_bytes(Image.new("L", (128, 96), 0)), "image/png"), "all black"),
        (("mask.png", png_bytes(Image.new("L", (128, 96), 255)), "image/png"), "all white"),
        (("mask.png", png_bytes(Image.new("L", (96, 96), 255)), "image/png"), "must have the same shape"),
        (("mask.txt", b"not an image at all" * 20, "text/plain"), "is not an image Atelier can read"),
    ]
    async with start_bot() as bot:
        for mask, needle in cases:
            inter = await fake.slash("edit", {"prompt": "a red door"}, attachments={"image": image, "mask": mask},
                                     user_id=fake.user_id, channel_id=fake.channel_id)
            await inter.wait_acked(3)
            await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=10)
            assert inter.ephemeral and needle in text_of(inter.original), text_of(inter.original)
        async with bot.service.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 0


async def test_remix_opens_a_modal_and_uses_its_prompt(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot)
        # Off by default: Reroll starts at once. /settings remix:on turns the modal on.
        assert not await bot.preferences.remix(fake.user_id, fake.guild_id)
        await (await fake.slash("settings", {"remix": "on"}, user_id=fake.user_id)).wait_acked(3)
        assert await bot.preferences.remix(fake.user_id, fake.guild_id)
        click = await fake.click(result.id, f"atelier:reroll:{parent.id}", user_id=fake.user_id)
        await click.wait_acked(3)
        assert click.modal is not None and input_value(click.modal) == "a lighthouse on a cliff"
        submitted = await fake.submit_modal(click, {input_id(click.modal): "a lighthouse in the snow"})
        await submitted.wait_for(lambda i: has_image(i.original), timeout=60)
        child = await bot.service.job_for_message(submitted.original.id)
        assert child.prompt == "a lighthouse in the snow" and child.parent_job_id == parent.id
        assert child.seed != parent.seed and child.command == "imagine"
        # Zoom with Remix on: the modal first, then the edit with the new prompt.
        zoom = await fake.click(result.id, f"atelier:zoom2:{parent.id}", user_id=fake.user_id)
        await zoom.wait_acked(3)
        assert zoom.modal is not None
        submitted = await fake.submit_modal(zoom, {input_id(zoom.modal): "a lighthouse seen from afar"})
        await submitted.wait_acked(3)
        (edit,) = await wait_jobs(bot, "edit", 1)
        assert edit.prompt == "a lighthouse seen from afar" and edit.params["canvas"]["op"] == "zoom"


async def test_an_upscale_of_a_grid_image_gets_the_canvas_buttons(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        grid, parent = await imagine(fake, bot, count=2)
        assert not any(cid.startswith(f"atelier:zoom2:{parent.id}") for cid in grid.custom_ids)  # a grid: U/V first
        click = await fake.click(grid.id, f"atelier:upscale:{parent.id}:1", user_id=fake.user_id)
        await click.wait_for(lambda i: has_image(i.original), timeout=60)
        upscaled = await bot.service.job_for_message(click.original.id)
        assert labels(click.original) == [["Vary (Region)", "Zoom Out 2x", "Zoom Out 1.5x"], list(ARROWS)]
        # Vary (Region) on it offers the grid over the upscaled image, its prompt taken from the grid's job.
        _, redraw = await open_region_modal(fake, click.original, upscaled.id, ["2"])
        assert input_value(redraw.modal) == "a lighthouse on a cliff"


async def test_the_region_menu_survives_a_restart(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot)
        click = await fake.click(result.id, f"atelier:region:{parent.id}", user_id=fake.user_id)
        await click.wait_acked(3)
        menu = click.original
    async with start_bot():  # a new process: the menu and its Redraw button are routed by their custom_ids
        pick = await fake.click(menu.id, f"atelier:cells:{parent.id}:0", user_id=fake.user_id, values=["3", "5"])
        await pick.wait_acked(3)
        assert f"atelier:redraw:{parent.id}:0:46" in menu.custom_ids
        redraw = await fake.click(menu.id, f"atelier:redraw:{parent.id}:0:46", user_id=fake.user_id)
        await redraw.wait_acked(3)
        assert redraw.modal is not None and input_value(redraw.modal) == "a lighthouse on a cliff"


async def test_hires_with_an_image_is_refused(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a cat", "hires": 2.0},
                                 attachments={"image": ("cat.png", png_bytes(Image.new("RGB", (64, 64))), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=10)
        assert inter.ephemeral and "Hires fix is for text-to-image" in text_of(inter.original)
        assert await jobs_of(bot, "imagine") == []
