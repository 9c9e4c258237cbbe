"""🎬 on an upscale result animates it, the same as the Animate button on a single image.

U1-U4 is how one image of a grid becomes a result of its own, and the grid's own 🎬 reply says to
upscale or vary first and react on that result; the video model fits the upscale to its own pixel
budget. 🔄 and 🔍 on an upscale stay ignored (upscales are final: no buttons).
"""

from __future__ import annotations

import asyncio

from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from tests.e2e.helpers import png_bytes as _png


def _has(message, *suffixes: str) -> bool:  # type: ignore[no-untyped-def]
    return message is not None and any(a.filename.endswith(suffixes) for a in message.attachments)


async def _job_count(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Job))).scalar_one()


async def test_animate_reaction_on_an_upscale_result(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("upscale", {"scale": 2},
                                 attachments={"image": ("small.png", _png(Image.new("RGB", (96, 64), (9, 99, 199))),
                                                        "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has(i.original, ".png", ".webp", ".jpg"), timeout=60)
        upscaled = await bot.service.job_for_message(inter.original.id)
        assert upscaled.command == "upscale" and upscaled.status == JobStatus.completed
        assert inter.original.components == []  # final: no buttons

        # 🔄 and 🔍 on an upscale: ignored (no placeholder, no job).
        jobs_before = await _job_count(bot)
        messages_before = len(fake.channel_messages(fake.channel_id))
        for emoji in ("🔄", "🔍"):
            await fake.react(inter.original.id, emoji, user_id=fake.user_id)
        await asyncio.sleep(0.3)
        assert len(fake.channel_messages(fake.channel_id)) == messages_before
        assert await _job_count(bot) == jobs_before

        # 🎬: a video of the upscale, posted to the channel for whoever reacted.
        await fake.react(inter.original.id, "🎬", user_id=fake.user_id)
        video = await fake.wait_for(
            lambda f: next((m for m in f.channel_messages(fake.channel_id) if _has(m, ".mp4", ".gif")), None),
            timeout=120, what="the animation of the upscale")
        assert f"<@{fake.user_id}>" in video.content
        child = await bot.service.job_for_message(video.id)
        assert child.command == "animate" and child.parent_job_id == upscaled.id
        assert child.params["source"] == {"job_id": upscaled.id, "index": 0}
        fields = {f["name"]: f["value"] for f in video.embeds[0]["fields"]}
        assert fields["Image"].startswith(f"Image 1 of job #{upscaled.id} animated with")
