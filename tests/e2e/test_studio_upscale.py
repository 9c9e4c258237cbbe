"""Upscaling end to end: /upscale with an attachment, U buttons on a grid, 🔍 on a single result."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from inference.media import read_parameters
from tests.e2e.helpers import has_image as _has_image
from tests.e2e.helpers import png_bytes as _png


async def test_upscale_command_x4(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        assert "upscale" in {c["name"] for c in fake.commands.values()}
        inter = await fake.slash("upscale", {"scale": 4},
                                 attachments={"image": ("small.png", _png(Image.new("RGB", (100, 60), (9, 99, 199))),
                                                        "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        (attachment,) = inter.original.attachments
        assert Image.open(io.BytesIO(attachment.data)).size == (400, 240)
        assert read_parameters(attachment.data) == "Postprocess upscale by: 4, Postprocess upscaler: tiny-esrgan"
        fields = {f["name"]: f["value"] for f in inter.original.embeds[0]["fields"]}
        assert fields["Upscaler"] == "tiny-esrgan" and fields["Size"] == "400×240"
        assert inter.original.components == []
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "upscale" and job.status == JobStatus.completed


async def test_u2_upscales_the_second_image_and_fits_the_upload_limit(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    fake.upload_limit = 400_000
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a quiet bay", "seed": 40, "count": 2, "steps": 1},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        parent = await bot.service.job_for_message(inter.original.id)
        click = await fake.click(inter.original.id, f"atelier:upscale:{parent.id}:1", user_id=fake.user_id)
        await click.wait_acked(3)
        await click.wait_for(lambda i: _has_image(i.original), timeout=60)
        (attachment,) = click.original.attachments
        # 512 px x2 = 1024 px: a PNG of ~0.9 MB, re-encoded under a 400 kB limit.
        assert attachment.size <= 400_000 and attachment.filename.endswith((".webp", ".jpg"))
        assert Image.open(io.BytesIO(attachment.data)).size == (1024, 1024)
        text = read_parameters(attachment.data)
        assert text.startswith("a quiet bay") and "Seed: 41" in text and text.endswith(
            "Postprocess upscale by: 2, Postprocess upscaler: tiny-esrgan")
        child = await bot.service.job_for_message(click.original.id)
        assert child.parent_job_id == parent.id and child.params["source"] == {"job_id": parent.id, "index": 1}
        assert not [r for r in fake.requests if r[2] == 413]


async def test_magnifier_reaction_upscales_a_single_result(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a kite", "seed": 5, "steps": 1}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        first = inter.original
        await fake.react(first.id, "🔍", user_id=fake.user_id)
        await fake.wait_for(lambda f: any(_has_image(m) and m.id != first.id
                                          for m in f.channel_messages(fake.channel_id)), timeout=60)
        message = next(m for m in fake.channel_messages(fake.channel_id) if _has_image(m) and m.id != first.id)
        assert Image.open(io.BytesIO(message.attachments[0].data)).size == (1024, 1024)
        job = await bot.service.job_for_message(message.id)
        assert job.command == "upscale" and job.params["scale"] == 2


async def test_too_large_for_x4_is_refused_without_a_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("upscale", {"scale": 4},
                                 attachments={"image": ("big.png", _png(Image.new("RGB", (1100, 1000))), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral and "up to 1.0 MP" in inter.original.embeds[0]["description"]
        async with bot.service.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 0
