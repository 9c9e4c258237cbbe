"""/upscale with the Stable Diffusion x4 upscaler: the upscaler option, x4 only, small inputs only."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from inference.media import read_parameters
from tests.e2e.helpers import has_image as _has_image
from tests.e2e.helpers import png_bytes as _png


async def test_sd_x4_through_the_upscaler_option(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        typed = await fake.autocomplete("upscale", {"upscaler": "tiny"}, focused="upscaler")
        await typed.wait_acked(3)
        assert [c["value"] for c in typed.choices] == ["tiny-esrgan", "tiny-sd-x4"]
        inter = await fake.slash("upscale", {"scale": 4, "upscaler": "tiny-sd-x4"},
                                 attachments={"image": ("tiny.png", _png(Image.new("RGB", (48, 32), (9, 99, 199))),
                                                        "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=90)
        (attachment,) = inter.original.attachments
        assert Image.open(io.BytesIO(attachment.data)).size == (192, 128)
        assert read_parameters(attachment.data) == "Postprocess upscale by: 4, Postprocess upscaler: tiny-sd-x4"
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "upscale" and job.status == JobStatus.completed and job.model == "tiny-sd-x4"
        assert job.params["steps"] == 2 and job.params["guidance"] == 9.0


async def test_sd_x4_refuses_x2_and_big_inputs_without_a_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        small = ("small.png", _png(Image.new("RGB", (48, 32))), "image/png")
        inter = await fake.slash("upscale", {"scale": 2, "upscaler": "tiny-sd-x4"}, attachments={"image": small},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral and "tiny-sd-x4 enlarges x4 only" in inter.original.embeds[0]["description"]

        big = ("big.png", _png(Image.new("RGB", (200, 100))), "image/png")
        inter = await fake.slash("upscale", {"scale": 4, "upscaler": "tiny-sd-x4"}, attachments={"image": big},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        text = inter.original.embeds[0]["description"]
        assert inter.ephemeral and "up to 16,384 pixels" in text and "200×100" in text
        async with bot.service.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 0
