"""A bot that runs for weeks: nothing per delivered job may stay in memory (the database has it)."""

from __future__ import annotations

import asyncio
import collections
import gc

import pytest

from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image


async def _deliver(fake, users: list[int], rounds: int, *, keep: bool = False) -> None:  # type: ignore[no-untyped-def]
    """Each member runs ``rounds`` /imagine one after another (some with count), all members at once."""

    async def member(user: int) -> None:
        for n in range(rounds):
            options = {"prompt": f"a lighthouse, take {n}", "seed": n}
            if n % 3 == 0:
                options["count"] = 2
            inter = await fake.slash("imagine", options, user_id=user, channel_id=fake.channel_id)
            await inter.wait_for(lambda i: has_image(i.original), timeout=120)
            if not keep:
                forget(fake, inter)

    await asyncio.gather(*(member(u) for u in users))


# Whose objects are counted: the bot's and its libraries', not the fake Discord's (aiohttp's server
# side, the records it keeps) that shares this process. Timer handles come and go with the load.
BOT_SIDE = ("discord.", "bot.", "cogs.", "db.", "inference.", "moderation.", "sqlalchemy.", "asyncio.locks.",
            "asyncio.tasks.", "_asyncio.")


def _census() -> collections.Counter[str]:
    gc.collect()
    names = (f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    return collections.Counter(name for name in names if name.startswith(BOT_SIDE))


def forget(fake, inter) -> None:  # type: ignore[no-untyped-def]
    """Drop the fake's records of a finished command, so that what grows is the bot's."""
    for attachment in inter.original.attachments:
        fake.cdn.pop(attachment.id, None)
    fake.messages.pop(inter.original.id, None)
    fake.interactions.pop(inter.id, None)
    fake.interactions_by_token.pop(inter.token, None)
    fake.requests.clear()


async def test_result_buttons_are_not_kept_per_message(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    """Clicks are routed by DynamicItem templates; a view discord.py kept per message would be held forever."""
    async with start_bot(engine_factory=ScriptedEngine().factory, nsfw_image_check=False) as bot:
        await _deliver(fake, [fake.user_id], 3, keep=True)
        await bot.service.drain()
        assert bot.persistent_views == [], f"{len(bot.persistent_views)} sent views kept by discord.py"
        click = next(m for m in fake.channel_messages(fake.channel_id) if has_image(m))
        reroll = next(c for c in click.custom_ids if c.startswith("atelier:reroll:"))
        again = await fake.click(click.id, reroll, user_id=fake.user_id)
        await again.wait_for(lambda i: has_image(i.original), timeout=60)  # the buttons still work


@pytest.mark.slow
async def test_objects_per_delivered_job_do_not_grow(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    users = [int(fake.add_member(71_000 + n, f"member{n}")["user"]["id"]) for n in range(2)]
    async with start_bot(engine_factory=ScriptedEngine().factory, nsfw_image_check=False) as bot:
        await _deliver(fake, users, 3)  # warm-up: caches, pools and compiled statements fill once
        await bot.service.drain()
        before = _census()
        await _deliver(fake, users, 10)
        await bot.service.drain()
        after = _census()
    jobs = len(users) * 10
    grown = after.total() - before.total()
    top = (after - before).most_common(8)
    # The delivery keeps a small lock per recent job (bounded): about one object a job. A view kept
    # per result message was twenty.
    assert grown / jobs < 2, f"{grown} more Python objects after {jobs} more delivered jobs; most: {top}"
