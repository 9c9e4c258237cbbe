"""/pose end to end: presets, attached skeletons, photos without a detector, bad options, buttons."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from sqlalchemy import func, select

from bot.params.pose_presets import render
from db.models import Job, JobStatus
from inference.media import read_parameters
from tests.e2e.helpers import has_image as _has_image
from tests.e2e.helpers import png_bytes as _png


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


async def _job_count(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Job))).scalar_one()


async def test_preset_pose_is_delivered_with_its_skeleton_and_parameters(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        assert "pose" in {c["name"] for c in fake.commands.values()}
        typed = await fake.autocomplete("pose", {"prompt": "x", "pose": "wa"}, focused="pose")
        await typed.wait_acked(3)
        assert [c["value"] for c in typed.choices] == ["walking", "waving"]
        inter = await fake.slash("pose", {"prompt": "a knight in silver armour", "pose": "Waving", "aspect": "2:3",
                                          "seed": 21, "strength": 1.2},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=90)
        (attachment,) = inter.original.attachments
        shown = _pixels(attachment.data)
        # tiny-sd15 is 512 px native: 2:3 is 448x640; the skeleton stands at its right, same height.
        assert shown.shape == (640, 896, 3)
        skeleton = np.asarray(render("waving", 448, 640).image).astype(int)
        assert np.abs(shown[:, 448:] - skeleton).mean() < 4
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "pose" and job.status == JobStatus.completed and job.model == "tiny-sd15-openpose"
        assert job.params["pose"] == {"preset": "waving"} and job.params["control_scale"] == 1.2
        async with bot.service.sessions() as s:
            from db.repositories import jobs as jobs_repo

            outputs = await jobs_repo.get_outputs(s, job_id=job.id)
        pure = next(o for o in outputs if o.index == 0)
        assert (pure.width, pure.height) == (448, 640)
        assert np.array_equal(_pixels(pure.data), shown[:, :448])
        text = read_parameters(pure.data)
        assert text.startswith("a knight in silver armour\n")
        assert "Seed: 21" in text and "Size: 448x640" in text and "Model: tiny-sd15," in text
        assert 'ControlNet 0: "Module: none, Model: tiny-sd15-openpose, Weight: 1.2' in text
        fields = {f["name"]: f["value"] for f in inter.original.embeds[0]["fields"]}
        assert fields["Size"] == "448×640" and fields["Seed"] == "21"
        assert f"atelier:reroll:{job.id}" in inter.original.custom_ids
        assert f"atelier:upscale:{job.id}" in inter.original.custom_ids

        # Reroll keeps the pose and the model, with a new seed.
        click = await fake.click(inter.original.id, f"atelier:reroll:{job.id}", user_id=fake.user_id)
        await click.wait_acked(3)
        await click.wait_for(lambda i: _has_image(i.original), timeout=90)
        child = await bot.service.job_for_message(click.original.id)
        assert child.command == "pose" and child.params["pose"] == {"preset": "waving"} and child.seed != 21
        assert np.abs(_pixels(click.original.attachments[0].data)[:, 448:] - skeleton).mean() < 4


async def test_attached_skeleton_keeps_its_shape(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        drawn = render("t-pose", 640, 448).image
        inter = await fake.slash("pose", {"prompt": "a gymnast", "seed": 3},
                                 attachments={"reference": ("skeleton.png", _png(drawn), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=90)
        shown = _pixels(inter.original.attachments[0].data)
        assert shown.shape == (448, 1280, 3)
        assert np.abs(shown[:, 640:] - np.asarray(drawn).astype(int)).mean() < 4
        job = await bot.service.job_for_message(inter.original.id)
        assert job.params["pose"] == {"attachment": "skeleton.png", "kind": "skeleton"}
        assert "pose_source" not in job.params["extra"]


async def test_photo_without_a_detector_says_how_to_enable_it(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(60, 200, (256, 192, 3), dtype=np.uint8))
    async with start_bot() as bot:
        inter = await fake.slash("pose", {"prompt": "a gymnast"},
                                 attachments={"reference": ("me.jpg", _png(photo), "image/png")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        text = inter.original.embeds[0]["description"]
        assert inter.ephemeral
        assert "`me.jpg` looks like a photo, not an OpenPose skeleton" in text
        assert "pip install controlnet-aux" in text and "body_pose_model.pth" in text
        assert await _job_count(bot) == 0


async def test_bad_strength_and_unknown_preset_are_refused_without_a_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("pose", {"prompt": "a knight", "strength": 2.5},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral and "Strength must be 0-2" in inter.original.embeds[0]["description"]
        assert "you asked for 2.5" in inter.original.embeds[0]["description"]

        inter = await fake.slash("pose", {"prompt": "a knight", "pose": "moonwalk"},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        text = inter.original.embeds[0]["description"]
        assert inter.ephemeral and "Unknown pose 'moonwalk'" in text and "fighting stance" in text
        assert await _job_count(bot) == 0
