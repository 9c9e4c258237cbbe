"""Two servers share one Atelier: Mallory is an ordinary member of server A and owns server B.

Each test replays an attack Mallory could make from B (or from A, where A's rules should stop her)
through the fake Discord, and checks that server A's members, jobs and moderators are untouched.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Job, JobStatus
from db.models_accounts import QuotaUsage
from db.models_moderation import Ban, ModerationCase
from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image

MALLORY = 66_000_001


@pytest.fixture
def servers(fake):  # type: ignore[no-untyped-def]
    """Server A is the fake's first guild (victim: fake.user_id); Mallory is in A and owns B."""
    fake.add_member(MALLORY, "mallory")
    return fake.add_guild("Mallory's place", MALLORY, "mallory")


def answer(inter: Any) -> Any:
    """The interaction's visible answer: its latest message that is not deleted nor "thinking"."""
    shown = [m for m in inter.messages if not m.deleted and not m.loading]
    return shown[-1] if shown else None


def error_text(inter: Any) -> str:
    message = answer(inter)
    return " ".join(e.get("description", "") for e in message.embeds) if message is not None else ""


def refused_privately(inter: Any, words: str) -> bool:
    message = answer(inter)
    return message is not None and message.ephemeral and words in error_text(inter) and not has_image(message)


async def slash(fake, command: str, options: dict | None = None, *, user_id: int, channel_id: int):  # type: ignore[no-untyped-def]
    inter = await fake.slash(command, options or {}, user_id=user_id, channel_id=channel_id)
    await inter.wait_acked(3)
    return inter


async def settled(inter: Any, timeout: float = 10) -> Any:
    await inter.wait_for(lambda i: answer(i) is not None, timeout=timeout)
    return inter


async def made(fake, bot, prompt: str, *, user_id: int, channel_id: int) -> Job:  # type: ignore[no-untyped-def]
    inter = await slash(fake, "imagine", {"prompt": prompt}, user_id=user_id, channel_id=channel_id)
    await inter.wait_for(lambda i: has_image(i.original), timeout=60)
    await bot.service.drain()
    return await bot.service.job_for_message(inter.original.id)


def images_in(fake, channel_id: int) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for m in fake.channel_messages(channel_id) if has_image(m) and not m.ephemeral)


# ----- 1. /show -----


async def test_show_keeps_jobs_in_their_server_and_age_restricted_channel(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    b = servers
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, sync_guild=None) as bot:
        after_dark = await made(fake, bot, "a moonlit garden", user_id=fake.user_id, channel_id=fake.nsfw_channel_id)
        ordinary = await made(fake, bot, "a red fox in snow", user_id=fake.user_id, channel_id=fake.channel_id)

        # Mallory reposts the victim's job from A's age-restricted channel into her own server.
        for channel in (b.channel_id, b.nsfw_channel_id):
            before = images_in(fake, channel)
            inter = await settled(await slash(fake, "show", {"job": after_dark.id}, user_id=MALLORY, channel_id=channel))
            assert refused_privately(inter, "another server")
            assert images_in(fake, channel) == before
        # ... and the ordinary one too: others' jobs only in their own server.
        inter = await settled(await slash(fake, "show", {"job": ordinary.id}, user_id=MALLORY, channel_id=b.channel_id))
        assert refused_privately(inter, "another server")
        # Within server A: an age-restricted job stays out of ordinary channels, even for its owner.
        for who in (MALLORY, fake.user_id):
            before = images_in(fake, fake.channel_id)
            inter = await settled(await slash(fake, "show", {"job": after_dark.id}, user_id=who,
                                              channel_id=fake.channel_id))
            assert refused_privately(inter, "age-restricted")
            assert images_in(fake, fake.channel_id) == before
        # What the rules allow still works: the owner in an age-restricted channel, anyone in A for A's job.
        mine = await settled(await slash(fake, "show", {"job": after_dark.id}, user_id=fake.user_id,
                                         channel_id=fake.nsfw_channel_id))
        assert has_image(answer(mine)) and not answer(mine).ephemeral
        theirs = await settled(await slash(fake, "show", {"job": ordinary.id}, user_id=MALLORY,
                                           channel_id=fake.channel_id))
        assert has_image(answer(theirs))


async def test_show_of_a_dm_job_and_the_moderation_gate_on_the_way_out(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    b = servers
    engine = ScriptedEngine()
    dm = int(fake.world.dm_channel(fake.user_id)["id"])
    async with start_bot(engine_factory=engine.factory, sync_guild=None, dm="allowed") as bot:
        private = await made(fake, bot, "a quiet lighthouse", user_id=fake.user_id, channel_id=dm)
        for channel in (fake.channel_id, b.channel_id):
            inter = await settled(await slash(fake, "show", {"job": private.id}, user_id=MALLORY, channel_id=channel))
            assert refused_privately(inter, "another server")
        # Mallory's own job from A, shown in B after B's moderators block its words there.
        own = await made(fake, bot, "a lighthouse at dusk", user_id=MALLORY, channel_id=fake.channel_id)
        await settled(await slash(fake, "mod terms add", {"category": "trademark", "term": "lighthouse"},
                                  user_id=MALLORY, channel_id=b.channel_id))
        await settled(await slash(fake, "mod policy", {"category": "trademark", "action": "block"},
                                  user_id=MALLORY, channel_id=b.channel_id))
        before = images_in(fake, b.channel_id)
        inter = await settled(await slash(fake, "show", {"job": own.id}, user_id=MALLORY, channel_id=b.channel_id))
        assert refused_privately(inter, "this server's moderation")
        assert images_in(fake, b.channel_id) == before


# ----- 2. pause and cancel -----


async def test_pause_in_one_server_leaves_the_others_running(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    b = servers
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, sync_guild=None, owner_ids=str(fake.owner_id)) as bot:
        paused = await settled(await slash(fake, "admin pause", user_id=MALLORY, channel_id=b.channel_id))
        assert paused.ephemeral and "this server" in paused.original.content
        # A's member is not affected.
        await made(fake, bot, "a red fox in snow", user_id=fake.user_id, channel_id=fake.channel_id)
        # B's own jobs wait until B resumes.
        waiting = await slash(fake, "imagine", {"prompt": "a paused idea"}, user_id=MALLORY, channel_id=b.channel_id)
        await waiting.wait_for(lambda i: i.original.embeds, timeout=30)
        await asyncio.sleep(0.5)
        assert not has_image(waiting.original)
        assert "paused" in str(waiting.original.embeds[0]).lower()
        await settled(await slash(fake, "admin resume", user_id=MALLORY, channel_id=b.channel_id))
        await waiting.wait_for(lambda i: has_image(i.original), timeout=60)

        # The bot-wide pause is for the bot's owners only.
        refused = await settled(await slash(fake, "admin pause", {"everywhere": True}, user_id=MALLORY,
                                            channel_id=b.channel_id))
        assert "owners" in error_text(refused) and not bot.pool.paused
        done = await settled(await slash(fake, "admin pause", {"everywhere": True}, user_id=fake.owner_id,
                                         channel_id=fake.channel_id))
        assert bot.pool.paused and "every server" in done.original.content
        await settled(await slash(fake, "admin resume", {"everywhere": True}, user_id=fake.owner_id,
                                  channel_id=fake.channel_id))
        assert not bot.pool.paused


async def test_a_moderator_cancels_only_their_own_servers_jobs(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    b = servers
    engine = ScriptedEngine()
    engine.gate.clear()  # the first job holds the only worker; the victim's second one waits
    async with start_bot(engine_factory=engine.factory, sync_guild=None) as bot:
        first = await slash(fake, "imagine", {"prompt": "first"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await fake.wait_for(lambda f: bot.pool.busy == 1, timeout=30)
        second = await slash(fake, "imagine", {"prompt": "second"}, user_id=fake.user_id, channel_id=fake.channel_id)
        await fake.wait_for(lambda f: first.original.embeds and second.original.embeds, timeout=30)
        async with bot.service.sessions() as s:
            running, queued = (await s.execute(select(Job).order_by(Job.id))).scalars().all()

        for job in (queued, running):
            inter = await settled(await slash(fake, "cancel", {"job": job.id}, user_id=MALLORY, channel_id=b.channel_id))
            assert "belongs to someone else" in error_text(inter)
        # A's owner (Manage Server in A) may.
        ok = await settled(await slash(fake, "cancel", {"job": queued.id}, user_id=fake.owner_id,
                                       channel_id=fake.channel_id))
        assert ok.original.content == f"Job #{queued.id}: canceled."
        engine.gate.set()
        await first.wait_for(lambda i: has_image(i.original), timeout=60)
        await bot.service.drain()
        assert (await bot.service.get_job(running.id)).status == JobStatus.completed


# ----- 3. /forget -----


async def _forget(fake, user_id: int, channel_id: int) -> None:  # type: ignore[no-untyped-def]
    ask = await slash(fake, "forget", user_id=user_id, channel_id=channel_id)
    confirm = await fake.click(ask.original.id, f"atelier:acct:forget:{user_id}", user_id=user_id)
    await confirm.wait_acked(3)
    await ask.wait_for(lambda i: i.original.embeds[0]["title"] == "Forgotten", timeout=10)


async def test_forget_keeps_bans_usage_and_the_moderators_records(fake, servers, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory, sync_guild=None) as bot:
        await made(fake, bot, "a secret plan", user_id=MALLORY, channel_id=fake.channel_id)
        refused = await settled(await slash(fake, "imagine", {"prompt": "a nude figure"}, user_id=MALLORY,
                                            channel_id=fake.channel_id))
        assert refused.ephemeral
        used = (await bot.accounts.status(user_id=MALLORY, guild_id=fake.guild_id)).used
        assert used > 0
        await settled(await slash(fake, "mod ban", {"user": MALLORY, "reason": "spam"}, user_id=fake.owner_id,
                                  channel_id=fake.channel_id))

        await _forget(fake, MALLORY, servers.channel_id)
        # The ban holds at once (no stale cache), and today's credits stay spent.
        again = await settled(await slash(fake, "imagine", {"prompt": "a red fox"}, user_id=MALLORY,
                                          channel_id=fake.channel_id))
        assert "barred" in error_text(again)
        assert (await bot.accounts.status(user_id=MALLORY, guild_id=fake.guild_id)).used == used
        async with bot.service.sessions() as s:
            assert (await s.execute(select(Job).where(Job.user_id == MALLORY))).scalars().all() == []
            assert await s.get(Ban, (fake.guild_id, MALLORY)) is not None
            cases = (await s.execute(select(ModerationCase).where(ModerationCase.user_id == MALLORY))).scalars().all()
            assert cases and all(c.prompt == "" and c.negative == "" and c.normalized == "" for c in cases)
            assert {c.action for c in cases} >= {"block", "ban"}
            usage = (await s.execute(select(QuotaUsage).where(QuotaUsage.user_id == MALLORY))).scalars().all()
            assert [u.used for u in usage] == [used]

        # The moderator forgets themself: the ban and the record of it are not theirs to remove.
        await _forget(fake, fake.owner_id, fake.channel_id)
        async with bot.service.sessions() as s:
            assert await s.get(Ban, (fake.guild_id, MALLORY)) is not None
            ban_case = (await s.execute(select(ModerationCase).where(ModerationCase.action == "ban"))).scalars().one()
            assert ban_case.moderator_id == fake.owner_id and ban_case.reason == "spam"
        still = await settled(await slash(fake, "imagine", {"prompt": "a red fox"}, user_id=MALLORY,
                                          channel_id=fake.channel_id))
        assert "barred" in error_text(still)
