"""/imagine end to end: the real bot, tiny models, the fake Discord."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from db.models import Job, JobStatus
from inference.media import read_parameters


async def _job(bot, job_id: int | None = None) -> Job:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        query = select(Job).order_by(Job.id.desc()) if job_id is None else select(Job).where(Job.id == job_id)
        return (await s.execute(query)).scalars().first()


def _has_image(message) -> bool:  # type: ignore[no-untyped-def]
    return message is not None and any(a.filename.endswith((".png", ".webp", ".jpg")) for a in message.attachments)


async def test_happy_path(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        assert "imagine" in fake.commands
        inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", "seed": 7, "steps": 4},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        message = inter.original
        (attachment,) = message.attachments
        image = Image.open(io.BytesIO(attachment.data))
        assert image.size == (512, 512)
        params = read_parameters(attachment.data)
        assert params.startswith("a lighthouse at dusk") and "Seed: 7" in params and "Model: tiny-sd15" in params
        (embed,) = message.embeds
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Seed"] == "7" and fields["Model"] == "tiny-sd15" and fields["Steps"] == "4"
        assert embed["image"]["url"] == f"attachment://{attachment.filename}"
        ids = [c["custom_id"] for row in message.components for c in row["components"]]
        job = await _job(bot)
        assert ids == [f"atelier:reroll:{job.id}"]
        await bot.service.drain()
        job = await _job(bot, job.id)
        assert job.status == JobStatus.completed and job.delivered and job.message_id == message.id
