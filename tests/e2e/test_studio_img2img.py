"""Image to image end to end: V1-V4 on a grid, /imagine with an attachment, bad attachments refused."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from db.repositories import jobs as jobs_repo
from inference.media import read_parameters
from tests.e2e.helpers import has_image as _has_image
from tests.e2e.helpers import png_bytes as _png


def _ids(message) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[c["custom_id"] for c in row["components"]] for row in message.components]


async def _count_jobs(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Job))).scalar_one()


async def test_grid_has_v_buttons_and_v2_varies_image_two(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a tiled roof", "seed": 21, "count": 4, "steps": 2},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        grid = inter.original
        parent = await bot.service.job_for_message(grid.id)
        assert _ids(grid) == [[f"atelier:upscale:{parent.id}:{i}" for i in range(4)] + [f"atelier:reroll:{parent.id}"],
                              [f"atelier:vary:{parent.id}:{i}" for i in range(4)] + [f"atelier:acct:rerun:{parent.id}"]]

        click = await fake.click(grid.id, f"atelier:vary:{parent.id}:1", user_id=fake.user_id)
        await click.wait_acked(3)
        await click.wait_for(lambda i: _has_image(i.original), timeout=60)
        (attachment,) = click.original.attachments
        assert Image.open(io.BytesIO(attachment.data)).size == (1024, 1024)  # a 2x2 grid of 512 px variations
        params = read_parameters(attachment.data)
        assert params.startswith("a tiled roof") and "Denoising strength: 0.7" in params and "Steps: 2" in params
        child = await bot.service.job_for_message(click.original.id)
        assert child.parent_job_id == parent.id and child.status == JobStatus.completed and child.seed != parent.seed
        assert child.params["source"] == {"job_id": parent.id, "index": 1} and child.params["task"] == "img2img"
        async with bot.service.sessions() as s:
            second = next(o for o in await jobs_repo.get_outputs(s, job_id=parent.id) if o.index == 1)
            stored = Image.open(io.BytesIO((await jobs_repo.get_inputs(s, job_id=child.id))["init_image"]))
        assert np.array_equal(np.asarray(stored.convert("RGB")), np.asarray(Image.open(io.BytesIO(second.data))))
        embed = click.original.embeds[0]
        assert any(f["value"].startswith(f"Variation of image 2 of job #{parent.id}") for f in embed["fields"])


async def test_imagine_with_an_attachment_follows_its_shape(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    photo = Image.new("RGB", (300, 200), (200, 120, 40))
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "the same, at night", "strength": 0.5, "seed": 3, "steps": 4},
                                 attachments={"image": ("photo.png", _png(photo), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        (attachment,) = inter.original.attachments
        # 3:2 at tiny-sd15's 512x512 budget, in multiples of 64.
        assert Image.open(io.BytesIO(attachment.data)).size == (640, 448)
        params = read_parameters(attachment.data)
        assert "Denoising strength: 0.5" in params and "Size: 640x448" in params and "Seed: 3" in params
        job = await bot.service.job_for_message(inter.original.id)
        assert job.params["source"] == {"attachment": "photo.png"}
        # Reroll keeps the input image: a new seed from the same picture.
        click = await fake.click(inter.original.id, f"atelier:reroll:{job.id}", user_id=fake.user_id)
        await click.wait_for(lambda i: _has_image(i.original), timeout=60)
        rerolled = await bot.service.job_for_message(click.original.id)
        async with bot.service.sessions() as s:
            inputs = [await jobs_repo.get_inputs(s, job_id=j.id) for j in (rerolled, job)]
        assert inputs[0]["init_image"] == inputs[1]["init_image"] and rerolled.seed != job.seed


def _bomb() -> bytes:
    png = _png(Image.new("L", (8, 8)))
    body = struct.pack(">II", 5000, 5000) + png[16 + 8:16 + 13]
    ihdr = struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return png[:8] + ihdr + png[8 + 25:]


def _truncated() -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    data = _png(Image.fromarray(noise))
    return data[: len(data) // 2]


@pytest.mark.parametrize(("file", "options", "needle"), [
    (("notes.txt", b"hello, not an image" * 50, "text/plain"), {}, "is not an image Atelier can read"),
    (("half.png", _truncated(), "image/png"), {}, "is truncated or damaged"),
    (("bomb.png", _bomb(), "image/png"), {}, "5000×5000 pixels"),
    (("huge.png", b"\0" * 2000, "image/png"), {"cap": 1000}, "images can be at most"),
    (("wide.png", _png(Image.new("RGB", (500, 100))), "image/png"), {}, "can differ by at most 4"),
    (("ok.png", _png(Image.new("RGB", (64, 64))), "image/png"), {"strength": 2.0}, "Strength must be 0.05-1"),
])
async def test_bad_attachments_get_their_message_and_leave_no_job(fake, start_bot, monkeypatch, file, options,
                                                                  needle) -> None:  # type: ignore[no-untyped-def]
    from bot.params import attachments

    if "cap" in options:
        monkeypatch.setattr(attachments, "MAX_BYTES", options.pop("cap"))
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a cat", **options}, attachments={"image": file},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral
        text = " ".join(e.get("description", "") for e in inter.original.embeds)
        assert needle in text, text
        assert await _count_jobs(bot) == 0


async def test_strength_without_an_image_is_refused(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a cat", "strength": 0.5}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        assert inter.ephemeral and "only applies with an `image`" in inter.original.embeds[0]["description"]
        assert await _count_jobs(bot) == 0
