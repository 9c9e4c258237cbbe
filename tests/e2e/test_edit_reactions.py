"""🔄, 🔍 and 🎬 on an /edit result act as they do on an /imagine result: a reroll (a new seed, the same
mask), an upscale and an animation of the edit, each posted for whoever reacted."""

from __future__ import annotations

import asyncio

import numpy as np
from PIL import Image
from sqlalchemy import select

from db.models import Job, JobStatus
from tests.e2e.helpers import has_image, png_bytes


async def _children(bot, parent_id: int) -> list[Job]:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return list((await s.execute(select(Job).where(Job.parent_job_id == parent_id))).scalars())


async def test_reactions_on_an_edit_result(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    photo = Image.fromarray(np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (32, 0, 64, 64))
    async with start_bot() as bot:
        inter = await fake.slash("edit", {"prompt": "a red door", "seed": 5},
                                 attachments={"image": ("photo.png", png_bytes(photo), "image/png"),
                                              "mask": ("mask.png", png_bytes(mask), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        edit = await bot.service.job_for_message(inter.original.id)
        assert edit.command == "edit"
        for emoji in ("🔄", "🔍", "🎬"):
            await fake.react(inter.original.id, emoji, user_id=fake.user_id)

        children: list[Job] = []
        for _ in range(600):  # the three jobs exist once their reactions are handled
            children = await _children(bot, edit.id)
            if len(children) == 3:
                break
            await asyncio.sleep(0.1)
        assert children, "the reactions on the edit started no jobs"
        by_command = {job.command: job for job in children}
        assert set(by_command) == {"edit", "upscale", "animate"}
        reroll = by_command["edit"]
        assert reroll.params["task"] == "inpaint" and reroll.seed != edit.seed
        assert reroll.params["prompt"] == "a red door"
        assert by_command["upscale"].params["source"] == {"job_id": edit.id, "index": 0}
        assert by_command["animate"].params["source"] == {"job_id": edit.id, "index": 0}
        for _ in range(1200):  # and each runs to its result
            statuses = {job.command: job.status for job in await _children(bot, edit.id)}
            if all(status in (JobStatus.completed, JobStatus.failed) for status in statuses.values()):
                break
            await asyncio.sleep(0.1)
        assert statuses == dict.fromkeys(("edit", "upscale", "animate"), JobStatus.completed)
