"""/describe through the fake Discord: four prompts with a button each, a button runs /imagine with its
prompt for whoever pressed it (after a restart too), moderated like a typed prompt; bad attachments."""

from __future__ import annotations

from PIL import Image
from sqlalchemy import func, select

from db.models import Job, JobStatus
from inference.media import read_parameters
from tests.e2e.helpers import has_image
from tests.e2e.helpers import png_bytes as _png

OTHER_USER = 4242


def _ids(message) -> list[str]:  # type: ignore[no-untyped-def]
    return [c["custom_id"] for row in message.components for c in row["components"]]


async def _count_jobs(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return (await s.execute(select(func.count()).select_from(Job))).scalar_one()


async def _describe(fake, anime: str | None = None):  # type: ignore[no-untyped-def]
    options = {"anime": anime} if anime else {}
    inter = await fake.slash("describe", options,
                             attachments={"image": ("photo.png", _png(Image.new("RGB", (96, 80), (40, 90, 200))),
                                                    "image/png")},
                             user_id=fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    await inter.wait_for(lambda i: has_image(i.original), timeout=90)
    return inter


async def test_describe_posts_four_prompts_and_a_button_imagines_one(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    fake.add_member(OTHER_USER, "other")
    async with start_bot() as bot:
        inter = await _describe(fake, anime="off")
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "describe" and job.status == JobStatus.completed
        assert _ids(inter.original) == [f"atelier:prompt:{job.id}:{i}" for i in range(4)]
        (attachment,) = inter.original.attachments
        prompts = read_parameters(attachment.data).split("\n")
        assert len(set(prompts)) == 4
        description = inter.original.embeds[0]["description"]
        assert all(f"**{i + 1}.** {prompt}" in description for i, prompt in enumerate(prompts))

        # Another member presses 3: an /imagine job of theirs with prompt 3.
        click = await fake.click(inter.original.id, f"atelier:prompt:{job.id}:2", user_id=OTHER_USER)
        await click.wait_acked(3)
        await click.wait_for(lambda i: has_image(i.original), timeout=90)
        child = await bot.service.job_for_message(click.original.id)
        assert child.command == "imagine" and child.user_id == OTHER_USER and child.parent_job_id == job.id
        assert child.prompt == prompts[2]
        assert read_parameters(click.original.attachments[0].data).startswith(prompts[2] + "\n")

    # After a restart the buttons still work: the prompts are stored with the job.
    async with start_bot() as bot:
        click = await fake.click(inter.original.id, f"atelier:prompt:{job.id}:0", user_id=fake.user_id)
        await click.wait_for(lambda i: has_image(i.original), timeout=90)
        again = await bot.service.job_for_message(click.original.id)
        assert again.prompt == prompts[0] and again.user_id == fake.user_id

        # /show posts it again with its prompts and their buttons.
        show = await fake.slash("show", {"job": job.id}, user_id=fake.user_id, channel_id=fake.channel_id)
        await show.wait_for(lambda i: has_image(i.original), timeout=30)
        assert show.original.custom_ids == [f"atelier:prompt:{job.id}:{i}" for i in range(4)]
        assert f"**2.** {prompts[1]}" in show.original.embeds[0]["description"]


async def test_anime_pictures_get_danbooru_tags(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        inter = await _describe(fake)  # auto: the tiny tagger sees an anime picture
        prompts = read_parameters(inter.original.attachments[0].data).split("\n")
        assert any(p.startswith("hatsune miku, ") for p in prompts)
        fields = {f["name"]: f["value"] for f in inter.original.embeds[0]["fields"]}
        assert fields["Tagger"] == "tiny-wd-tagger"


async def test_a_described_prompt_is_moderated_like_a_typed_one(fake, start_bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from bot.params import describe

    async with start_bot() as bot:
        inter = await _describe(fake, anime="off")
        job = await bot.service.job_for_message(inter.original.id)
        # A prompt the server's rules block (as if the captioner had written it).
        monkeypatch.setattr(describe, "prompts_of", lambda png: ["a nude child on a beach"] * 4)
        before = await _count_jobs(bot)
        click = await fake.click(inter.original.id, f"atelier:prompt:{job.id}:0", user_id=fake.user_id)
        await click.wait_acked(3)
        await click.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert click.ephemeral and "Prompt refused" in click.original.embeds[0]["title"]
        assert await _count_jobs(bot) == before


async def test_bad_attachments_are_refused_with_a_reason(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        before = await _count_jobs(bot)
        inter = await fake.slash("describe", {}, attachments={"image": ("notes.txt", b"not an image", "text/plain")},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert inter.ephemeral and "`notes.txt` is not an image Atelier can read" in inter.original.embeds[0]["description"]
        assert await _count_jobs(bot) == before


async def test_a_prompt_button_draws_with_the_pressers_defaults(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    """Pressing a prompt is /imagine with that prompt: the presser's /settings apply as they would there."""
    async with start_bot() as bot:
        await (await fake.slash("settings", {"aspect": "16:9", "negative": "blurry"}, user_id=fake.user_id,
                                channel_id=fake.channel_id)).wait_acked(3)
        inter = await _describe(fake, anime="off")
        job = await bot.service.job_for_message(inter.original.id)
        click = await fake.click(inter.original.id, f"atelier:prompt:{job.id}:1", user_id=fake.user_id)
        await click.wait_for(lambda i: has_image(i.original), timeout=90)
        child = await bot.service.job_for_message(click.original.id)
        assert child.params["aspect"] == "16:9" and child.params["width"] > child.params["height"]
        assert "blurry" in child.params["negative_prompt"]
