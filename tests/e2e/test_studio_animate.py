"""/animate, the Animate button and 🎬 end to end: MP4 frame count and fps, GIF fallback, upload limit."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import Job
from inference import video
from tests.e2e.helpers import png_bytes as _png


def _has(message, *suffixes: str) -> bool:  # type: ignore[no-untyped-def]
    return message is not None and any(a.filename.endswith(suffixes) for a in message.attachments)


def _still() -> dict:  # type: ignore[type-arg]
    import numpy as np

    pixels = np.random.default_rng(1).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    return {"image": ("still.png", _png(Image.fromarray(pixels)), "image/png")}


async def test_animate_posts_an_mp4_with_the_requested_frames_and_fps(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("animate", {"frames": 6, "fps": 12, "motion": 60, "seed": 4}, attachments=_still(),
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has(i.original, ".mp4"), timeout=90)
        (attachment,) = inter.original.attachments
        frames, fps = video.decode_frames(attachment.data)
        assert len(frames) == 6 and fps == pytest.approx(12) and frames[0].size == (256, 128)
        fields = {f["name"]: f["value"] for f in inter.original.embeds[0]["fields"]}
        assert fields["Frames"].startswith("6 at 12 fps") and fields["Motion"] == "60" and fields["Seed"] == "4"
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "animate" and job.params["task"] == "img2vid"
        async with bot.service.sessions() as s:
            from db.repositories import jobs as jobs_repo

            (output,) = await jobs_repo.get_outputs(s, job_id=job.id)
        assert video.sniff_mime(output.data) == video.MP4


async def test_gif_fallback_and_refusal_without_a_job(fake, start_bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(video, "ffmpeg_exe", lambda: None)
    async with start_bot() as bot:
        bad = await fake.slash("animate", {"fps": 40}, attachments=_still(), user_id=fake.user_id,
                               channel_id=fake.channel_id)
        await bad.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert bad.ephemeral and "FPS must be 3-30" in bad.original.embeds[0]["description"]
        async with bot.service.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(Job))).scalar_one() == 0
        inter = await fake.slash("animate", {"frames": 3, "fps": 5}, attachments=_still(), user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has(i.original, ".gif"), timeout=90)
        with Image.open(io.BytesIO(inter.original.attachments[0].data)) as gif:
            assert gif.n_frames == 3 and gif.info["duration"] == 200


async def test_reaction_and_animate_button_fit_the_upload_limit(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a windmill", "seed": 2, "steps": 1},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has(i.original, ".png", ".webp", ".jpg"), timeout=60)
        first = inter.original
        parent = await bot.service.job_for_message(first.id)
        assert f"atelier:animate:{parent.id}" in first.custom_ids

        await fake.react(first.id, "🎬", user_id=fake.user_id)
        await fake.wait_for(lambda f: any(_has(m, ".mp4") for m in f.channel_messages(fake.channel_id)), timeout=90)
        reacted = next(m for m in fake.channel_messages(fake.channel_id) if _has(m, ".mp4"))
        natural = reacted.attachments[0].size
        child = await bot.service.job_for_message(reacted.id)
        assert child.command == "animate" and child.parent_job_id == parent.id and child.params["frames"] == 4
        assert len(video.decode_frames(reacted.attachments[0].data)[0]) == 4

        fake.upload_limit = natural // 2  # the interaction reports it; the result must be re-encoded under it
        click = await fake.click(first.id, f"atelier:animate:{parent.id}", user_id=fake.user_id)
        await click.wait_acked(3)
        await click.wait_for(lambda i: _has(i.original, ".mp4"), timeout=90)
        (attachment,) = click.original.attachments
        assert attachment.size <= natural // 2
        frames, fps = video.decode_frames(attachment.data)
        assert len(frames) == 4 and fps == pytest.approx(7)
        assert not [r for r in fake.requests if r[2] == 413]


async def test_show_posts_an_animate_job_as_its_video(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    """/show of an /animate job reposts the video (it used to be read as a PNG: the NSFW gate failed on
    it, or without that gate the video went out named .png); the gate scores its frames."""
    async with start_bot(nsfw_image_check=True) as bot:
        scored: list[bytes] = []
        check = bot.moderation.images.check

        def recording(png: bytes, **kwargs):  # type: ignore[no-untyped-def]
            scored.append(png)
            return check(png, **kwargs)

        bot.moderation.images.check = recording
        inter = await fake.slash("animate", {"frames": 6, "fps": 12, "seed": 4}, attachments=_still(),
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has(i.original, ".mp4"), timeout=90)
        await bot.service.drain()
        job = await bot.service.job_for_message(inter.original.id)
        scored.clear()
        show = await fake.slash("show", {"job": job.id}, user_id=fake.user_id, channel_id=fake.channel_id)
        await show.wait_for(lambda i: any(_has(m, ".mp4", ".png", ".webp") or (m.embeds and not m.loading)
                                          for m in i.messages if not m.deleted), timeout=30)
        (posted,) = [m for m in show.messages if not m.deleted and not m.loading]
        assert not posted.ephemeral and _has(posted, ".mp4"), posted.embeds
        frames, _ = video.decode_frames(posted.attachments[0].data)
        assert len(frames) == 6
        assert scored and all(png.startswith(b"\x89PNG") for png in scored)
