"""/blend takes the member's /settings aspect and negative prompt, over the server's (/admin defaults),
where it leaves them out, as /imagine and /anime do; a typed aspect wins."""

from __future__ import annotations

from PIL import Image

from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image
from tests.e2e.helpers import png_bytes as _png
from tests.e2e.test_settings import _own_negative, _slash


def _images() -> dict:  # type: ignore[type-arg]
    return {f"image{i}": (f"{i}.png", _png(Image.new("RGB", (96, 96), colour)), "image/png")
            for i, colour in ((1, (220, 20, 20)), (2, (20, 20, 220)))}


async def _blend(fake, bot, options: dict):  # type: ignore[no-untyped-def,type-arg]
    inter = await fake.slash("blend", {"seed": 4, **options}, attachments=_images(), user_id=fake.user_id,
                             channel_id=fake.channel_id)
    await inter.wait_acked(3)
    await inter.wait_for(lambda i: has_image(i.original), timeout=60)
    return await bot.service.job_for_message(inter.original.id)


async def test_blend_takes_the_member_and_server_defaults(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        await _slash(fake, "admin defaults", {"negative": "watermark", "aspect": "3:2"}, user_id=fake.owner_id)
        job = await _blend(fake, bot, {})  # the server's defaults
        assert (job.command, job.params["aspect"], _own_negative(job)) == ("blend", "3:2", "watermark")
        assert job.params["width"] > job.params["height"]
        await _slash(fake, "settings", {"aspect": "16:9", "negative": "lowres"})
        job = await _blend(fake, bot, {})  # the member's, over the server's
        assert (job.params["aspect"], _own_negative(job)) == ("16:9", "lowres")
        typed = await _blend(fake, bot, {"aspect": "1:1"})  # a typed aspect wins
        assert (typed.params["aspect"], _own_negative(typed)) == ("1:1", "lowres")
        assert typed.params["width"] == typed.params["height"]
