"""Zoom Out of a /blend result and of an /imagine style_ref result through the fake Discord: the edit
draws its border from the prompt alone, so nothing of the parent's image prompt (IP-Adapter) reaches
the edit's parameters, stored inputs, PNG or embed, and the kept centre is the parent's pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.params import canvas
from db.models import JobStatus
from db.repositories import jobs as jobs_repo
from inference.limits import DEFAULT_MASK_BLUR
from inference.media import read_parameters
from tests.e2e.helpers import has_image, png_bytes

IMAGE_PROMPT_KEYS = ("ip_images", "ip_weights", "ip_mode", "ip_scale", "style_ref")
MARGIN = 3 * DEFAULT_MASK_BLUR


def _image(name: str, colour: tuple[int, int, int]):  # type: ignore[no-untyped-def]
    return (name, png_bytes(Image.new("RGB", (96, 96), colour)), "image/png")


def _pixels(message) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(Image.open(io.BytesIO(message.attachments[0].data)).convert("RGB"))


@pytest.mark.parametrize(("command", "options", "files", "recorded"), [
    ("blend", {"seed": 11, "aspect": "1:1"},
     {"image1": _image("red.png", (220, 20, 20)), "image2": _image("blue.png", (20, 20, 220))}, "IP Adapter"),
    ("imagine", {"prompt": "a fox in a field", "seed": 4, "steps": 2, "style_weight": 0.7},
     {"style_ref": _image("ink.png", (10, 10, 10))}, "Style reference"),
])
async def test_zoom_out_of_an_image_prompt_result(fake, start_bot, command, options, files,  # type: ignore[no-untyped-def]
                                                  recorded) -> None:
    async with start_bot() as bot:
        inter = await fake.slash(command, options, attachments=files, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        result = inter.original
        parent = await bot.service.job_for_message(result.id)
        assert parent.params["ip_mode"] and recorded in read_parameters(result.attachments[0].data)

        click = await fake.click(result.id, f"atelier:zoom2:{parent.id}", user_id=fake.user_id)
        await click.wait_for(lambda i: has_image(i.original), timeout=120)
        zoomed = click.original
        job = await bot.service.job_for_message(zoomed.id)
        assert job.command == "edit" and job.parent_job_id == parent.id and job.status == JobStatus.completed
        assert not [key for key in IMAGE_PROMPT_KEYS if key in job.params]
        async with bot.service.sessions() as s:
            stored = await jobs_repo.get_inputs(s, job_id=job.id)
        assert not [name for name in stored if name.startswith("ip_images")]
        text = read_parameters(zoomed.attachments[0].data)
        assert "IP Adapter" not in text and "Style reference" not in text
        assert text.splitlines()[0] == read_parameters(result.attachments[0].data).splitlines()[0]  # its prompt
        fields = {f["name"]: f["value"] for f in zoomed.embeds[0]["fields"]}
        assert fields["Image"].startswith(f"Zoom Out 2x of image 1 of job #{parent.id}")
        # The kept centre is the parent's own pixels.
        source = _pixels(result)
        expected = np.asarray(canvas.zoom_out(Image.fromarray(source), 2.0).image)
        inner = slice(128 + canvas.OVERLAP + MARGIN, 384 - canvas.OVERLAP - MARGIN)
        out = _pixels(zoomed)
        assert out.shape == source.shape == (512, 512, 3)
        assert np.array_equal(out[inner, inner], expected[inner, inner])


async def test_hires_fix_with_a_style_reference(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a fox in a field", "seed": 4, "steps": 2, "hires": 1.5,
                                             "style_weight": 0.7},
                                 attachments={"style_ref": _image("ink.png", (10, 10, 10))},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        assert _pixels(inter.original).shape == (768, 768, 3)
        text = read_parameters(inter.original.attachments[0].data)
        assert "Hires upscale: 1.5" in text and "Style reference: tiny-ip-adapter-sd15, Style weight: 0.7" in text
        job = await bot.service.job_for_message(inter.original.id)
        assert job.status == JobStatus.completed and job.params["hires"] == 1.5 and job.params["ip_mode"] == "style"
