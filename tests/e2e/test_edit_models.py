"""/edit with a model that has no inpainting path (SD 3 here; SD 2 and DeepFloyd IF alike) is refused at
the command, with the reason, before the downloads and before anything is queued."""

from __future__ import annotations

from PIL import Image
from sqlalchemy import func, select

from db.models import Job
from tests.e2e.helpers import png_bytes


async def test_edit_refuses_a_model_that_cannot_inpaint(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    image = ("photo.png", png_bytes(Image.new("RGB", (128, 96), (40, 90, 160))), "image/png")
    drawn = Image.new("L", (128, 96), 0)
    drawn.paste(255, (0, 0, 64, 96))  # the left half redrawn: a mask /edit takes
    mask = ("mask.png", png_bytes(drawn), "image/png")
    async with start_bot() as bot:
        inter = await fake.slash("edit", {"prompt": "a red door", "model": "tiny-sd3"},
                                 attachments={"image": image, "mask": mask}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=10)
        text = inter.original.embeds[0].get("description", "")
        assert inter.ephemeral and "tiny-sd3 (sd3) can't redraw part of an image" in text, text
        async with bot.service.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 0
