"""Moderation end to end: refusals with a reason and a review button, warnings, bans, /mod permissions,
age-restricted channels, and the NSFW image filter."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import Job, JobStatus
from db.models_moderation import ModerationCase
from moderation import Policy
from tests.e2e.helpers import has_image as _has_image


def _text(message) -> str:  # type: ignore[no-untyped-def]
    parts = [message.content or ""]
    for embed in message.embeds:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']} {f['value']}" for f in embed.get("fields", [])]
    return " ".join(parts)


async def _count(bot, model) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


async def test_refusal_says_why_and_offers_review(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        await (await fake.slash("mod channel", {"channel": fake.mod_channel_id}, user_id=fake.owner_id,
                                channel_id=fake.channel_id)).wait_acked(3)
        inter = await fake.slash("imagine", {"prompt": "explicit sex scene on a beach"}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        assert inter.ephemeral and inter.original is not None
        text = _text(inter.original)
        assert "Prompt refused" in text and "sexual" in text
        assert await _count(bot, Job) == 0, "a refused prompt must not queue a job"
        async with bot.service.sessions() as s:
            case = (await s.execute(select(ModerationCase))).scalars().one()
        assert case.action == "block" and case.categories == ["sexual"] and case.user_id == fake.user_id
        (review_id,) = inter.original.custom_ids
        assert review_id == f"atelier:review:{case.id}"
        click = await fake.click(inter.original.id, review_id, user_id=fake.user_id)
        await click.wait_acked(3)
        await fake.wait_for(lambda f: any(f"case #{case.id}" in _text(m) for m in f.channel_messages(fake.mod_channel_id)))
        assert "Sent to this server's moderators" in click.original.content


async def test_naked_mole_rat_is_fine(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        inter = await fake.slash("imagine", {"prompt": "a naked mole rat in a burrow"}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        assert not inter.ephemeral
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)


async def test_warned_prompt_is_made_with_a_notice(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "Pikachu napping in a sunny forest"}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        assert "copyright" in _text(inter.original).lower()
        async with bot.service.sessions() as s:
            case = (await s.execute(select(ModerationCase))).scalars().one()
            job = (await s.execute(select(Job))).scalars().one()
        assert case.action == "warn" and case.job_id == job.id
        assert job.params["negative_prompt"].endswith("gore, blood"), "the safety negative prompt applies"


async def test_ban_blocks_commands_buttons_and_reactions(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await fake.slash("imagine", {"prompt": "a teapot", "seed": 1}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        result = inter.original
        job = await bot.service.job_for_message(result.id)

        ban = await fake.slash("mod ban", {"user": fake.user_id, "duration": "1d", "reason": "spam"},
                               user_id=fake.owner_id, channel_id=fake.channel_id)
        await ban.wait_acked(3)
        assert "can no longer use Atelier" in _text(ban.original)

        refused = await fake.slash("imagine", {"prompt": "a teapot"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await refused.wait_acked(3)
        assert refused.ephemeral and "barred" in _text(refused.original) and "spam" in _text(refused.original)

        click = await fake.click(result.id, f"atelier:reroll:{job.id}", user_id=fake.user_id)
        await click.wait_for(lambda i: any("barred" in _text(m) for m in i.messages), timeout=10)

        await fake.react(result.id, "🔄", user_id=fake.user_id)
        await fake.wait_for(lambda f: any("barred" in _text(m) for m in f.channel_messages(fake.channel_id)), timeout=10)
        assert await _count(bot, Job) == 1, "a banned member queued a job"

        unban = await fake.slash("mod unban", {"user": fake.user_id}, user_id=fake.owner_id, channel_id=fake.channel_id)
        await unban.wait_acked(3)
        again = await fake.slash("imagine", {"prompt": "a teapot"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await again.wait_acked(3)
        assert not again.ephemeral


async def test_mod_is_for_manage_server_only(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        assert str(fake.commands["mod"]["default_member_permissions"]) == str(1 << 5)  # MANAGE_GUILD
        assert fake.commands["imagine"].get("default_member_permissions") is None
        denied = await fake.slash("mod log", {}, user_id=fake.user_id, channel_id=fake.channel_id)
        await denied.wait_acked(3)
        assert denied.ephemeral and "Manage Server" in _text(denied.original)
        allowed = await fake.slash("mod log", {}, user_id=fake.owner_id, channel_id=fake.channel_id)
        await allowed.wait_acked(3)
        assert "Moderation log" in _text(allowed.original)


async def test_age_restricted_channel_with_opt_in(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        prompt = {"prompt": "a nude woman reclining, oil painting"}
        before = await fake.slash("imagine", prompt, user_id=fake.user_id, channel_id=fake.nsfw_channel_id)
        await before.wait_acked(3)
        assert before.ephemeral, "without the guild's opt-in even an age-restricted channel refuses"

        opt_in = await fake.slash("mod policy", {"nsfw_opt_in": True}, user_id=fake.owner_id, channel_id=fake.channel_id)
        await opt_in.wait_acked(3)

        ordinary = await fake.slash("imagine", prompt, user_id=fake.user_id, channel_id=fake.channel_id)
        await ordinary.wait_acked(3)
        assert ordinary.ephemeral and "sexual" in _text(ordinary.original)

        nsfw = await fake.slash("imagine", prompt, user_id=fake.user_id, channel_id=fake.nsfw_channel_id)
        await nsfw.wait_acked(3)
        assert not nsfw.ephemeral
        await nsfw.wait_for(lambda i: _has_image(i.original), timeout=60)

        minors = await fake.slash("imagine", {"prompt": "a nude 15 year old girl"}, user_id=fake.user_id,
                                  channel_id=fake.nsfw_channel_id)
        await minors.wait_acked(3)
        assert minors.ephemeral and "minors" in _text(minors.original)
        async with bot.service.sessions() as s:
            job = (await s.execute(select(Job))).scalars().one()
        assert "safety_negative" not in job.params, "no safety negative where the guild allows adult content"


async def test_image_over_threshold_is_withheld(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        # The tiny models draw noise that scores ~0.001; a threshold below that makes the filter fire.
        await bot.moderation.save_policy(fake.guild_id, Policy(image_threshold=0.00001))
        inter = await fake.slash("imagine", {"prompt": "a quiet harbour"}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_for(lambda i: i.original is not None and "NSFW image filter" in _text(i.original), timeout=60)
        assert not _has_image(inter.original)
        await bot.service.drain()
        async with bot.service.sessions() as s:
            job = (await s.execute(select(Job))).scalars().one()
            case = (await s.execute(select(ModerationCase))).scalars().one()
        assert job.status == JobStatus.failed and case.layer == "image" and case.job_id == job.id
