"""/blend and /imagine style_ref through the fake Discord: the delivered PNG and its parameters, the
stored reference images (a reroll reuses them), and refusals that name the option at fault."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from db.repositories import jobs as jobs_repo
from inference.media import read_parameters
from tests.e2e.helpers import has_image
from tests.e2e.helpers import png_bytes as _png


def _image(name: str, colour: tuple[int, int, int], size: tuple[int, int] = (96, 96)):  # type: ignore[no-untyped-def]
    return (name, _png(Image.new("RGB", size, colour)), "image/png")


async def _count_jobs(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Job))).scalar_one()


async def _result(inter):  # type: ignore[no-untyped-def]
    await inter.wait_acked(3)
    await inter.wait_for(lambda i: has_image(i.original), timeout=90)
    return inter.original


async def test_blend_two_images(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("blend", {"seed": 11, "aspect": "1:1"},
                                 attachments={"image1": _image("red.png", (220, 20, 20)),
                                              "image2": _image("blue.png", (20, 20, 220))},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        message = await _result(inter)
        job = await bot.service.job_for_message(message.id)
        assert job.command == "blend" and job.status == JobStatus.completed
        (attachment,) = message.attachments
        params = read_parameters(attachment.data)
        assert params.startswith("best quality, high quality\n")
        assert "IP Adapter: tiny-ip-adapter-sd15" in params and 'IP Adapter weights: "1, 1"' in params
        assert "Seed: 11" in params and Image.open(io.BytesIO(attachment.data)).size == (512, 512)
        fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
        assert fields["Image"] == "Blend of red.png (1), blue.png (1)"
        async with bot.service.sessions() as s:
            stored = await jobs_repo.get_inputs(s, job_id=job.id)
        assert sorted(stored) == ["ip_images.0", "ip_images.1"]
        # Reroll: the same references, a new seed.
        click = await fake.click(message.id, f"atelier:reroll:{job.id}", user_id=fake.user_id)
        await click.wait_for(lambda i: has_image(i.original), timeout=90)
        rerolled = await bot.service.job_for_message(click.original.id)
        async with bot.service.sessions() as s:
            again = await jobs_repo.get_inputs(s, job_id=rerolled.id)
        assert again == stored and rerolled.seed != job.seed
        assert "IP Adapter weights" in read_parameters(click.original.attachments[0].data)
        # Vary (Strong): image-to-image from the blend, still guided by its images.
        vary = await fake.click(message.id, f"atelier:vary:{job.id}", user_id=fake.user_id)
        await vary.wait_for(lambda i: has_image(i.original), timeout=90)
        varied = read_parameters(vary.original.attachments[0].data)
        assert "Denoising strength: 0.7" in varied and "IP Adapter: tiny-ip-adapter-sd15" in varied


async def test_blend_three_weighted_images_on_sdxl_with_a_prompt(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("blend", {"weights": "2, 0.5, 1", "model": "tiny-sdxl", "prompt": "a lighthouse",
                                           "seed": 5},
                                 attachments={"image1": _image("a.png", (200, 180, 20)),
                                              "image2": _image("b.png", (20, 150, 60), (120, 80)),
                                              "image3": _image("c.png", (90, 20, 160), (64, 100))},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        message = await _result(inter)
        params = read_parameters(message.attachments[0].data)
        assert params.startswith("a lighthouse\n") and "Model: tiny-sdxl" in params
        assert "IP Adapter: tiny-ip-adapter-sdxl" in params and 'IP Adapter weights: "2, 0.5, 1"' in params
        job = await bot.service.job_for_message(message.id)
        assert job.params["ip_weights"] == [2.0, 0.5, 1.0] and job.params["source"]["blend"] == ["a.png", "b.png",
                                                                                                   "c.png"]


async def test_imagine_style_ref(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a fox in a field", "seed": 4, "steps": 2, "style_weight": 0.7},
                                 attachments={"style_ref": _image("ink.png", (10, 10, 10))},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        message = await _result(inter)
        params = read_parameters(message.attachments[0].data)
        assert "Style reference: tiny-ip-adapter-sd15, Style weight: 0.7" in params
        job = await bot.service.job_for_message(message.id)
        assert job.command == "imagine" and job.params["ip_mode"] == "style"
        fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
        assert fields["Image"] == "Style of ink.png at 0.7"


@pytest.mark.parametrize(("command", "options", "files", "needle"), [
    ("blend", {}, {"image1": ("a.txt", b"words, not pixels" * 20, "text/plain"), "image2": None},
     "`image1` (a.txt): `a.txt` is not an image Atelier can read"),
    ("blend", {}, {"image1": None, "image2": ("b.png", b"\x89PNG\r\n\x1a\n broken", "image/png")},
     "`image2` (b.png): `b.png` is not an image"),
    ("blend", {"weights": "1, 2, 3"}, {"image1": None, "image2": None}, "`weights` has 3 numbers for 2 images"),
    ("blend", {"weights": "1, lots"}, {"image1": None, "image2": None}, "'lots' is not a number"),
    ("blend", {"weights": "0, 0"}, {"image1": None, "image2": None}, "at least one image needs a weight above 0"),
    ("blend", {"weights": "1, 9"}, {"image1": None, "image2": None}, "each weight must be 0-5"),
    ("blend", {"model": "tiny-sd3"}, {"image1": None, "image2": None}, "works with SD 1.5 and SDXL models"),
    ("blend", {}, {"image1": "same", "image2": "same"}, "`image1` and `image2` are the same picture"),
    ("imagine", {"prompt": "a cat", "style_weight": 0.5}, {}, "`style_weight` only applies with a `style_ref`"),
    ("imagine", {"prompt": "a cat", "style_weight": 3.0}, {"style_ref": None}, "Style weight must be 0-2"),
    ("imagine", {"prompt": "a cat"}, {"style_ref": ("s.txt", b"nope" * 30, "text/plain")},
     "`style_ref` (s.txt): `s.txt` is not an image"),
])
async def test_bad_input_is_refused_and_leaves_no_job(fake, start_bot, command, options, files, needle) -> None:  # type: ignore[no-untyped-def]
    colours = iter([(200, 0, 0), (0, 200, 0), (0, 0, 200)])
    attachments = {}
    for name, file in files.items():
        if file is None:
            file = _image(f"{name}.png", next(colours))
        elif file == "same":
            file = _image(f"{name}.png", (7, 7, 7))
        attachments[name] = file
    async with start_bot() as bot:
        inter = await fake.slash(command, options, attachments=attachments, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        text = " ".join(e.get("description", "") for e in inter.original.embeds)
        assert inter.ephemeral and needle in text, text
        assert await _count_jobs(bot) == 0


async def test_style_ref_with_image_to_image(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a harbour", "seed": 8, "steps": 4, "strength": 0.5,
                                             "model": "tiny-sdxl"},
                                 attachments={"image": _image("photo.png", (120, 160, 200), (128, 96)),
                                              "style_ref": _image("paint.png", (240, 200, 30))},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        message = await _result(inter)
        params = read_parameters(message.attachments[0].data)
        assert "Denoising strength: 0.5" in params
        assert "Style reference: tiny-ip-adapter-sdxl, Style weight: 1" in params
        fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
        assert fields["Image"] == "From your image at strength 0.5\nStyle of paint.png at 1"
        job = await bot.service.job_for_message(message.id)
        async with bot.service.sessions() as s:
            assert sorted(await jobs_repo.get_inputs(s, job_id=job.id)) == ["init_image", "ip_images.0"]
