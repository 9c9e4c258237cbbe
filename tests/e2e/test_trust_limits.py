"""DMs and global bans, reactions that check first, abuse limits, and who may press a result button.

Mallory is an ordinary member of server A (the fake's first guild) and owns server B.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from db.models import Job
from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image
from tests.e2e.test_trust_servers import MALLORY, answer, error_text, made, settled, slash


@pytest.fixture
def servers(fake):  # type: ignore[no-untyped-def]
    fake.add_member(MALLORY, "mallory")
    return fake.add_guild("Mallory's place", MALLORY, "mallory")


async def jobs_of(bot, user_id: int) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Job).where(Job.user_id == user_id)) or 0)


def dm_text(fake, user_id: int) -> str:  # type: ignore[no-untyped-def]
    return " ".join(e.get("description", "") for m in fake.dm_messages(user_id) for e in m.embeds)


def bot_posts(fake, channel_id: int) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for m in fake.channel_messages(channel_id) if m.author_id == fake.bot_user_id and not m.ephemeral)


async def message_with_buttons(fake, channel_id: int, custom_ids: list[str]):  # type: ignore[no-untyped-def]
    """A bot message in ``channel_id`` carrying these buttons: an old, copied or forwarded button."""
    message = fake.new_message(channel_id, fake.bot_user_id)
    message.components = [{"type": 1, "components": [
        {"type": 2, "style": 2, "label": str(n), "custom_id": cid} for n, cid in enumerate(row)]}
        for row in (custom_ids[:5], custom_ids[5:])]
    await fake.publish(message)
    return message


# ----- 4. DMs and global bans -----


async def test_generation_in_dms_is_off_by_default(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    dm = int(fake.world.dm_channel(fake.user_id)["id"])
    async with start_bot(engine_factory=ScriptedEngine().factory, sync_guild=None) as bot:
        inter = await settled(await slash(fake, "imagine", {"prompt": "a red fox"}, user_id=fake.user_id,
                                          channel_id=dm))
        assert answer(inter).ephemeral and "servers only" in error_text(inter)
        assert await jobs_of(bot, fake.user_id) == 0
        quota = await settled(await slash(fake, "quota", user_id=fake.user_id, channel_id=dm))
        assert "credits" in str(answer(quota).embeds)  # reading works in DMs


async def test_owners_ban_globally_and_server_owners_cannot(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    b = servers
    dm = int(fake.world.dm_channel(MALLORY)["id"])
    async with start_bot(engine_factory=ScriptedEngine().factory, sync_guild=None, owner_ids=str(fake.owner_id),
                         dm="allowed") as bot:
        refused = await settled(await slash(fake, "admin ban-global", {"user": fake.user_id}, user_id=MALLORY,
                                            channel_id=b.channel_id))
        assert "Only the bot's owners" in error_text(refused)
        await settled(await slash(fake, "admin ban-global", {"user": MALLORY, "reason": "raids"},
                                  user_id=fake.owner_id, channel_id=fake.channel_id))
        for channel in (b.channel_id, dm, fake.channel_id):
            inter = await settled(await slash(fake, "imagine", {"prompt": "a red fox"}, user_id=MALLORY,
                                              channel_id=channel))
            assert "everywhere" in error_text(inter) and "raids" in error_text(inter), channel
        assert await jobs_of(bot, MALLORY) == 0
        await settled(await slash(fake, "admin unban-global", {"user": MALLORY}, user_id=fake.owner_id,
                                  channel_id=fake.channel_id))
        await made(fake, bot, "a red fox", user_id=MALLORY, channel_id=b.channel_id)


# ----- 5. reactions check first -----


async def test_refused_reactions_post_nothing_and_tell_the_member_once(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, sync_guild=None) as bot:
        job = await made(fake, bot, "a red fox in snow", user_id=fake.user_id, channel_id=fake.channel_id)
        await settled(await slash(fake, "mod ban", {"user": MALLORY, "reason": "spam"}, user_id=fake.owner_id,
                                  channel_id=fake.channel_id))
        posts = bot_posts(fake, fake.channel_id)
        for emoji in ("🔄", "🔍", "🎬"):
            await fake.react(job.message_id, emoji, user_id=MALLORY)
        await bot.service.drain()
        await fake.wait_for(lambda f: f.dm_messages(MALLORY), timeout=10)
        assert bot_posts(fake, fake.channel_id) == posts
        assert len(fake.dm_messages(MALLORY)) == 1 and "barred" in dm_text(fake, MALLORY)
        assert await jobs_of(bot, MALLORY) == 0

        # Out of credits: the same, privately.
        broke = fake.owner_id
        await bot.accounts.set_quota(guild_id=fake.guild_id, scope="member", target_id=broke, credits=0)
        await fake.react(job.message_id, "🔄", user_id=broke)
        await fake.wait_for(lambda f: f.dm_messages(broke), timeout=10)
        assert bot_posts(fake, fake.channel_id) == posts and "credits" in dm_text(fake, broke)


# ----- 6. abuse limits -----


async def test_cooldown_covers_commands_buttons_and_reactions(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, cooldown=60) as bot:
        first = await slash(fake, "imagine", {"prompt": "a red fox"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await first.wait_for(lambda i: has_image(i.original), timeout=60)
        await bot.service.drain()
        second = await settled(await slash(fake, "imagine", {"prompt": "another fox"}, user_id=fake.user_id,
                                           channel_id=fake.channel_id))
        assert answer(second).ephemeral and "try again in" in error_text(second)
        quota = await settled(await slash(fake, "quota", user_id=fake.user_id, channel_id=fake.channel_id))
        assert "credits" in str(answer(quota).embeds)  # reading is not counted
        click = await fake.click(first.original.id, f"atelier:reroll:{(await bot.service.job_for_message(first.original.id)).id}",
                                 user_id=fake.user_id)
        await settled(click)
        assert "try again in" in error_text(click)
        posts = bot_posts(fake, fake.channel_id)
        await fake.react(first.original.id, "🔄", user_id=fake.user_id)
        await fake.wait_for(lambda f: f.dm_messages(fake.user_id), timeout=10)
        assert bot_posts(fake, fake.channel_id) == posts and "try again in" in dm_text(fake, fake.user_id)
        assert await jobs_of(bot, fake.user_id) == 1


async def test_one_review_request_per_case(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        await settled(await slash(fake, "mod channel", {"channel": fake.mod_channel_id}, user_id=fake.owner_id,
                                  channel_id=fake.channel_id))
        refused = await settled(await slash(fake, "imagine", {"prompt": "explicit sex scene on a beach"},
                                            user_id=fake.user_id, channel_id=fake.channel_id))
        (review,) = refused.original.custom_ids
        first = await settled(await fake.click(refused.original.id, review, user_id=fake.user_id))
        assert "Sent to this server's moderators" in answer(first).content
        again = await settled(await fake.click(refused.original.id, review, user_id=fake.user_id))
        assert "already asked" in error_text(again)
        assert bot_posts(fake, fake.mod_channel_id) == 1


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (9, 99, 199)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_per_minute_limits_and_queue_caps(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, show_per_minute=2, export_per_minute=1,
                         attachments_per_minute=1, max_queued_per_member=1, max_queue=2) as bot:
        job = await made(fake, bot, "a red fox", user_id=fake.user_id, channel_id=fake.channel_id)
        shows = [await settled(await slash(fake, "show", {"job": job.id}, user_id=fake.user_id,
                                           channel_id=fake.channel_id)) for _ in range(3)]
        assert [has_image(answer(s)) for s in shows] == [True, True, False]
        assert "2 times a minute" in error_text(shows[2])
        exports = [await settled(await slash(fake, "export", user_id=fake.user_id, channel_id=fake.channel_id))
                   for _ in range(2)]
        assert "Sent to your DMs" in answer(exports[0]).content and "1 time a minute" in error_text(exports[1])
        uploads = []
        for _ in range(2):
            inter = await fake.slash("upscale", {"scale": 2}, user_id=fake.user_id, channel_id=fake.channel_id,
                                     attachments={"image": ("small.png", _png(), "image/png")})
            uploads.append(await settled(await inter.wait_acked(3), timeout=60))
        assert "1 time a minute" in error_text(uploads[1])

        engine.gate.clear()  # the member's next job holds the worker: a second one is over the cap of 1
        await slash(fake, "imagine", {"prompt": "one"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await fake.wait_for(lambda f: bot.pool.busy == 1, timeout=30)
        over = await settled(await slash(fake, "imagine", {"prompt": "two"}, user_id=fake.user_id,
                                         channel_id=fake.channel_id))
        assert "the limit is 1" in error_text(over)
        three = await slash(fake, "imagine", {"prompt": "three"}, user_id=fake.owner_id, channel_id=fake.channel_id)
        await three.wait_for(lambda i: i.original.embeds, timeout=30)  # stored: two jobs wait or run
        late = int(fake.add_member(66_000_003, "late")["user"]["id"])
        full = await settled(await slash(fake, "imagine", {"prompt": "four"}, user_id=late,
                                         channel_id=fake.channel_id))
        assert "The queue is full (2 jobs)" in error_text(full)
        engine.gate.set()


# ----- 8. the presser's right on every button -----


async def test_a_button_naming_another_servers_job_does_nothing(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    """An old or copied button in server B whose custom_id names a job of server A (as a reused id
    would): Mallory, who owns B, presses each one there."""
    b = servers
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, sync_guild=None) as bot:
        done = await made(fake, bot, "a red fox in snow", user_id=fake.user_id, channel_id=fake.channel_id)
        engine.gate.clear()
        waiting = await slash(fake, "imagine", {"prompt": "a queued one"}, user_id=fake.user_id,
                              channel_id=fake.channel_id)
        await waiting.wait_for(lambda i: i.original.embeds, timeout=30)
        async with bot.service.sessions() as s:
            queued = max((await s.execute(select(Job.id))).scalars().all())
        ids = [f"atelier:{action}:{done.id}" for action in ("reroll", "vary", "subtle", "upscale", "animate")]
        ids += [f"atelier:acct:rerun:{done.id}", f"atelier:cancel:{queued}"]
        stale = await message_with_buttons(fake, b.channel_id, ids)
        for custom_id in ids:
            click = await settled(await fake.click(stale.id, custom_id, user_id=MALLORY))
            assert answer(click).ephemeral, custom_id
            assert "someone else" in error_text(click), (custom_id, error_text(click))
        assert await jobs_of(bot, MALLORY) == 0
        engine.gate.set()
        await waiting.wait_for(lambda i: has_image(i.original), timeout=60)


async def test_no_button_carries_an_age_restricted_job_into_an_ordinary_channel(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    """Issue 14 item 1 through buttons, not /show only: the owner of a job made in an age-restricted
    channel presses its Rerun, Reroll, U, V and Animate buttons on a message in an ordinary channel
    (a copied or forwarded button): each is refused privately and no job is made."""
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, sync_guild=None) as bot:
        after_dark = await made(fake, bot, "a moonlit garden", user_id=fake.user_id, channel_id=fake.nsfw_channel_id)
        ids = [f"atelier:{action}:{after_dark.id}" for action in ("reroll", "vary", "subtle", "upscale", "animate")]
        ids += [f"atelier:upscale:{after_dark.id}:1", f"atelier:acct:rerun:{after_dark.id}"]
        copied = await message_with_buttons(fake, fake.channel_id, ids)
        before = await jobs_of(bot, fake.user_id)
        for custom_id in ids:
            click = await settled(await fake.click(copied.id, custom_id, user_id=fake.user_id))
            assert answer(click).ephemeral, custom_id
            assert "age-restricted" in error_text(click), (custom_id, error_text(click))
        assert await jobs_of(bot, fake.user_id) == before
        assert not any(has_image(m) for m in fake.channel_messages(fake.channel_id) if not m.ephemeral)
