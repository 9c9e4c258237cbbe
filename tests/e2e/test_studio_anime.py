"""/anime end to end: tags reordered for Animagine, its negative and resolutions, the prompt as used."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import func, select

from bot.params.anime import DEFAULT_NEGATIVE
from db.models import Job
from inference.media import read_parameters
from tests.e2e.helpers import has_image as _has_image


async def test_anime_orders_tags_and_uses_animagines_settings(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        assert "anime" in {c["name"] for c in fake.commands.values()}
        inter = await fake.slash("anime", {"prompt": "night sky, Hatsune_Miku, 1girl, vocaloid, smile",
                                           "aspect": "16:9", "seed": 11},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        used = "1girl, hatsune miku, vocaloid, night sky, smile, masterpiece, best quality, very aesthetic, absurdres"
        embed = inter.original.embeds[0]
        assert embed["description"] == used
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Model"] == "tiny-animagine" and fields["Size"] == "336×192" and fields["Steps"] == "4"
        assert "reordered" in fields["Prompt"] and "quality tags added" in fields["Prompt"]
        (attachment,) = inter.original.attachments
        assert Image.open(io.BytesIO(attachment.data)).size == (336, 192)
        text = read_parameters(attachment.data)
        assert text.startswith(used + "\nNegative prompt: " + DEFAULT_NEGATIVE)
        assert "Sampler: Euler a" in text and "CFG scale: 7" in text and "Seed: 11" in text
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "anime" and job.params["anime"]["input"].startswith("night sky")
        assert "atelier:reroll:" + str(job.id) in inter.original.custom_ids


async def test_anime_refuses_an_empty_tag_list_without_a_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("anime", {"prompt": " , ,"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral and "prompt is empty" in inter.original.embeds[0]["description"]
        async with bot.service.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 0
