"""The acceptance matrix of the studio issue, filling what the other e2e files leave out.

Every button and reaction on a result delivers a file whose size and parameters are checked
(single results, grids, /pose results, videos), 🔍 and 🎬 on a grid say which button to use instead,
a GIF that would exceed the upload limit is re-encoded under it, /upscale x2 works from the command,
and every command that takes an attachment refuses each kind of malformed file with its own message
and leaves no job behind. Tiny models throughout; steps are kept at 1 where the model allows.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from db.repositories import jobs as jobs_repo
from inference import video
from inference.media import read_parameters
from tests.e2e.helpers import png_bytes as _png


def _has(message, *suffixes: str) -> bool:  # type: ignore[no-untyped-def]
    suffixes = suffixes or (".png", ".webp", ".jpg")
    return message is not None and any(a.filename.endswith(suffixes) for a in message.attachments)


def _size(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


async def _count_jobs(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Job))).scalar_one()


async def _click(fake, message_id: int, custom_id: str, *suffixes: str):  # type: ignore[no-untyped-def]
    """Press a button and return the message that carries the new job's result."""
    click = await fake.click(message_id, custom_id, user_id=fake.user_id)
    await click.wait_acked(3)
    await click.wait_for(lambda i: _has(i.original, *suffixes), timeout=90)
    return click.original


async def _react(fake, message_id: int, emoji: str, *suffixes: str):  # type: ignore[no-untyped-def]
    """Add a reaction and return the new channel message that carries the resulting file."""
    seen = {m.id for m in fake.channel_messages(fake.channel_id)}
    await fake.react(message_id, emoji, user_id=fake.user_id)
    await fake.wait_for(lambda f: any(_has(m, *suffixes) and m.id not in seen
                                      for m in f.channel_messages(fake.channel_id)), timeout=90)
    return next(m for m in fake.channel_messages(fake.channel_id) if _has(m, *suffixes) and m.id not in seen)


async def _slash_result(fake, command: str, options: dict, *suffixes: str, attachments=None):  # type: ignore[no-untyped-def]
    inter = await fake.slash(command, options, attachments=attachments, user_id=fake.user_id,
                             channel_id=fake.channel_id)
    await inter.wait_acked(3)
    await inter.wait_for(lambda i: _has(i.original, *suffixes), timeout=90)
    return inter.original


# ----- buttons and reactions on a single /imagine result -----


async def test_single_result_buttons_and_reactions_deliver_checked_pngs(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        first = await _slash_result(fake, "imagine", {"prompt": "a harbour crane", "seed": 11, "steps": 1})
        parent = await bot.service.job_for_message(first.id)

        def check(message, *, width: int = 512, height: int = 512):  # type: ignore[no-untyped-def]
            (attachment,) = message.attachments
            assert _size(attachment.data) == (width, height)
            text = read_parameters(attachment.data)
            assert text is not None and text.startswith("a harbour crane\n")
            assert "Steps: 1," in text and "Model: tiny-sd15" in text
            return text

        rerolled = await _click(fake, first.id, f"atelier:reroll:{parent.id}")
        child = await bot.service.job_for_message(rerolled.id)
        text = check(rerolled)
        assert child.seed != parent.seed and f"Seed: {child.seed}," in text and "Denoising strength" not in text

        strong = await _click(fake, first.id, f"atelier:vary:{parent.id}")  # Vary (Strong): no index, image 1
        child = await bot.service.job_for_message(strong.id)
        text = check(strong)
        assert "Denoising strength: 0.7" in text and f"Seed: {child.seed}," in text
        assert child.params["source"] == {"job_id": parent.id, "index": 0} and child.parent_job_id == parent.id

        subtle = await _click(fake, first.id, f"atelier:subtle:{parent.id}")
        assert "Denoising strength: 0.35" in check(subtle)

        upscaled = await _click(fake, first.id, f"atelier:upscale:{parent.id}")
        text = check(upscaled, width=1024, height=1024)
        assert f"Seed: {parent.seed}," in text
        assert text.endswith("Postprocess upscale by: 2, Postprocess upscaler: tiny-esrgan")
        up = await bot.service.job_for_message(upscaled.id)
        # An upscale of a result takes canvas edits only (issue 19): no Reroll, Upscale or Vary.
        assert upscaled.custom_ids == [f"atelier:{a}:{up.id}" for a in
                                       ("region", "zoom2", "zoom15", "left", "right", "up", "down")]

        reacted = await _react(fake, first.id, "🔄")
        child = await bot.service.job_for_message(reacted.id)
        assert child.command == "imagine" and child.seed != parent.seed
        assert f"Seed: {child.seed}," in check(reacted)

        magnified = await _react(fake, first.id, "🔍")
        text = check(magnified, width=1024, height=1024)
        assert text.endswith("Postprocess upscale by: 2, Postprocess upscaler: tiny-esrgan")
        child = await bot.service.job_for_message(magnified.id)
        assert child.command == "upscale" and child.parent_job_id == parent.id


# ----- a grid: U and V buttons name one image; 🔍 and 🎬 point at them -----


async def test_grid_png_u4_and_reactions_that_need_one_image(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        grid = await _slash_result(fake, "imagine", {"prompt": "four lanterns", "seed": 30, "count": 4, "steps": 1})
        parent = await bot.service.job_for_message(grid.id)
        (attachment,) = grid.attachments
        assert _size(attachment.data) == (1024, 1024)  # 2x2 of 512 px
        text = read_parameters(attachment.data)
        assert text.startswith("four lanterns\n") and "Seed: 30," in text and "Size: 512x512" in text
        async with bot.service.sessions() as s:
            outputs = await jobs_repo.get_outputs(s, job_id=parent.id)
        singles = sorted((o.index, o.seed, o.width, o.height) for o in outputs if o.index >= 0)
        assert singles == [(i, 30 + i, 512, 512) for i in range(4)]

        u4 = await _click(fake, grid.id, f"atelier:upscale:{parent.id}:3")
        assert _size(u4.attachments[0].data) == (1024, 1024)
        text = read_parameters(u4.attachments[0].data)
        assert text.startswith("four lanterns\n") and "Seed: 33," in text and text.endswith(
            "Postprocess upscale by: 2, Postprocess upscaler: tiny-esrgan")

        jobs_before = await _count_jobs(bot)
        posts = len(fake.channel_messages(fake.channel_id))
        for n, (emoji, needle) in enumerate((
                ("🔍", f"pick the image to upscale with U1-U4 under job #{parent.id}"),
                ("🎬", f"animates single images: upscale or vary one of job #{parent.id} first"))):
            if n:  # a minute later: private notices about reactions go at most once a minute
                bot.limits.clock = lambda: time.monotonic() + 120
            await fake.react(grid.id, emoji, user_id=fake.user_id)
            await fake.wait_for(lambda f, needle=needle: any(needle in str(m.embeds)
                                                             for m in f.dm_messages(fake.user_id)),
                                timeout=30)
        assert await _count_jobs(bot) == jobs_before
        assert len(fake.channel_messages(fake.channel_id)) == posts, "the hints go to the member alone"


# ----- /pose results: Vary and Upscale keep the pose and its parameters -----


async def test_pose_variation_keeps_the_skeleton_and_upscale_takes_the_pure_image(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        first = await _slash_result(fake, "pose", {"prompt": "a dancer on a stage", "pose": "dancing", "seed": 8})
        parent = await bot.service.job_for_message(first.id)
        assert _size(first.attachments[0].data) == (1024, 512)  # 512 px image, skeleton beside it
        skeleton = np.asarray(Image.open(io.BytesIO(first.attachments[0].data)).convert("RGB"))[:, 512:].astype(int)

        varied = await _click(fake, first.id, f"atelier:vary:{parent.id}")
        shown = np.asarray(Image.open(io.BytesIO(varied.attachments[0].data)).convert("RGB")).astype(int)
        assert shown.shape == (512, 1024, 3) and np.abs(shown[:, 512:] - skeleton).mean() < 4
        text = read_parameters(varied.attachments[0].data)
        assert "Denoising strength: 0.7" in text and "ControlNet 0: \"Module: none, Model: tiny-sd15-openpose" in text
        child = await bot.service.job_for_message(varied.id)
        assert child.command == "pose" and child.params["pose"] == {"preset": "dancing"}
        assert child.status == JobStatus.completed and child.seed != parent.seed

        upscaled = await _click(fake, first.id, f"atelier:upscale:{parent.id}")
        assert _size(upscaled.attachments[0].data) == (1024, 1024)  # image 1 alone, x2: no skeleton
        text = read_parameters(upscaled.attachments[0].data)
        assert text.startswith("a dancer on a stage\n") and "ControlNet 0:" in text
        assert text.endswith("Postprocess upscale by: 2, Postprocess upscaler: tiny-esrgan")


# ----- videos: Reroll on a video, GIF over the upload limit -----


def _still(seed: int = 1) -> dict:  # type: ignore[type-arg]
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 128, 3), dtype=np.uint8)
    return {"image": ("still.png", _png(Image.fromarray(pixels)), "image/png")}


async def test_reroll_on_a_video_keeps_frames_and_fps(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        first = await _slash_result(fake, "animate", {"frames": 3, "fps": 9, "seed": 5}, ".mp4", attachments=_still())
        parent = await bot.service.job_for_message(first.id)
        assert first.custom_ids == [f"atelier:reroll:{parent.id}"]  # videos get Reroll only
        again = await _click(fake, first.id, f"atelier:reroll:{parent.id}", ".mp4")
        frames, fps = video.decode_frames(again.attachments[0].data)
        assert len(frames) == 3 and fps == pytest.approx(9) and frames[0].size == (256, 128)
        child = await bot.service.job_for_message(again.id)
        assert child.command == "animate" and child.parent_job_id == parent.id and child.seed != parent.seed


async def test_gif_over_the_upload_limit_is_reencoded_under_it(fake, start_bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(video, "ffmpeg_exe", lambda: None)
    async with start_bot():
        natural = await _slash_result(fake, "animate", {"frames": 4, "fps": 8, "seed": 6}, ".gif",
                                      attachments=_still())
        size = natural.attachments[0].size
        with Image.open(io.BytesIO(natural.attachments[0].data)) as gif:
            # GIF keeps delays in 10 ms units: 8 fps (125 ms) is stored as 120 ms.
            assert gif.n_frames == 4 and gif.info["duration"] == 120 and gif.size == (256, 128)
        fake.upload_limit = size // 2
        fitted = await _slash_result(fake, "animate", {"frames": 4, "fps": 8, "seed": 6}, ".gif",
                                     attachments=_still())
        (attachment,) = fitted.attachments
        assert attachment.size <= size // 2
        with Image.open(io.BytesIO(attachment.data)) as gif:
            assert gif.n_frames == 4 and gif.info["duration"] == 120 and gif.width < 256
        assert not [r for r in fake.requests if r[2] == 413]


# ----- /upscale x2 from the command -----


async def test_upscale_command_x2(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        source = Image.new("RGB", (120, 80), (30, 140, 60))
        result = await _slash_result(fake, "upscale", {"scale": 2},
                                     attachments={"image": ("field.png", _png(source), "image/png")})
        (attachment,) = result.attachments
        assert _size(attachment.data) == (240, 160)
        assert read_parameters(attachment.data) == "Postprocess upscale by: 2, Postprocess upscaler: tiny-esrgan"
        job = await bot.service.job_for_message(result.id)
        assert job.command == "upscale" and job.params["scale"] == 2 and job.status == JobStatus.completed


# ----- malformed attachments on every command that takes one -----


def _bomb() -> bytes:
    """A valid 8x8 PNG whose header claims 5000x5000: refused from the header, before decoding."""
    png = _png(Image.new("L", (8, 8)))
    body = struct.pack(">II", 5000, 5000) + png[16 + 8:16 + 13]
    ihdr = struct.pack(">I", 13) + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body))
    return png[:8] + ihdr + png[8 + 25:]


def _noise(fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def _truncated(fmt: str) -> bytes:
    data = _noise(fmt)
    return data[: len(data) // 2]


MALFORMED = [
    pytest.param(("scan.tiff", _noise("TIFF"), "image/tiff"), "is not an image Atelier can read", id="wrong-type"),
    pytest.param(("notes.txt", b"hello, not an image\n" * 50, "text/plain"), "is not an image Atelier can read",
                 id="non-image"),
    pytest.param(("cat.png", b"%PDF-1.7\n" + b"\0" * 400, "image/png"), "is not an image Atelier can read",
                 id="non-image-named-png"),
    pytest.param(("half.png", _truncated("PNG"), "image/png"), "is truncated or damaged", id="truncated-png"),
    pytest.param(("half.jpg", _truncated("JPEG"), "image/jpeg"), "is truncated or damaged", id="truncated-jpeg"),
    pytest.param(("bomb.png", _bomb(), "image/png"), "is 5000×5000 pixels (25.0 MP); images can have at most 16.8 MP",
                 id="bomb"),
    pytest.param(("huge.png", _png(Image.new("RGB", (64, 64))) + b"\0" * 3000, "image/png"),
                 "images can be at most", id="huge"),
]

# command, the attachment option, the other options it needs.
COMMANDS = [
    pytest.param("imagine", "image", {"prompt": "a cat"}, id="imagine"),
    pytest.param("upscale", "image", {}, id="upscale"),
    pytest.param("animate", "image", {}, id="animate"),
    pytest.param("pose", "reference", {"prompt": "a dancer"}, id="pose"),
]


@pytest.mark.parametrize(("command", "option", "options"), COMMANDS)
async def test_malformed_attachments_get_their_message_and_leave_no_job(fake, start_bot, monkeypatch, command,
                                                                        option, options) -> None:  # type: ignore[no-untyped-def]
    from bot.params import attachments

    async with start_bot() as bot:
        for param in MALFORMED:
            file, needle = param.values
            with monkeypatch.context() as patch:
                if param.id == "huge":
                    patch.setattr(attachments, "MAX_BYTES", 2000)  # the file is 3 kB and more
                inter = await fake.slash(command, options, attachments={option: file}, user_id=fake.user_id,
                                         channel_id=fake.channel_id)
                await inter.wait_acked(3)
                await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
            text = " ".join(e.get("description", "") for e in inter.original.embeds)
            assert inter.ephemeral, (param.id, text)
            assert f"`{file[0]}`" in text and needle in text, (param.id, text)
            assert not _has(inter.original), param.id
        assert await _count_jobs(bot) == 0
