"""An uploaded image is stored apart from its job's parameters, end to end (issue 14, item 7)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from sqlalchemy import select

from db.models import JobInput, JobStatus
from tests.e2e.helpers import has_image
from tests.e2e.helpers import png_bytes as _png


async def test_an_upload_is_stored_once_apart_from_the_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    upload = Image.fromarray(np.random.default_rng(5).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    async with start_bot() as bot:
        inter = await fake.slash("upscale", {"scale": 2, "upscaler": "tiny-esrgan"},
                                 attachments={"image": ("noise.png", _png(upload), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: has_image(i.original), timeout=90)
        job = await bot.service.job_for_message(inter.original.id)
        assert job.status == JobStatus.completed
        assert "init_image" not in job.params and set(job.params["inputs"]) == {"init_image"}
        async with bot.service.reads() as session:
            (stored,) = (await session.execute(select(JobInput).where(JobInput.job_id == job.id))).scalars().all()
        assert stored.id == job.params["inputs"]["init_image"] and stored.name == "init_image"
        kept = Image.open(io.BytesIO(stored.data)).convert("RGB")
        assert np.array_equal(np.asarray(kept), np.asarray(upload))  # the member's pixels, losslessly
