"""Private results (/settings private) stay private through /show: another member cannot repost one
(job numbers are easy to guess), and a member with private results sees their own repost alone."""

from __future__ import annotations

from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image
from tests.e2e.test_settings import OTHER, _job_of, _slash


async def test_a_private_result_is_not_reposted_by_others_and_reposts_privately(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    fake.add_member(OTHER, "other")
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        await _slash(fake, "settings", {"private": "on"})
        inter, job = await _job_of(fake, bot, {})
        assert inter.original.ephemeral and job.params["private"] is True

        theirs = await _slash(fake, "show", {"job": job.id}, user_id=OTHER, channel_id=fake.channel_id)
        await theirs.wait_for(lambda i: i.original is not None and i.original.embeds, timeout=30)
        assert theirs.ephemeral and "private to the member who made it" in theirs.original.embeds[0]["description"]
        assert not has_image(theirs.original)

        mine = await _slash(fake, "show", {"job": job.id}, channel_id=fake.channel_id)
        await mine.wait_for(lambda i: has_image(i.original), timeout=30)
        assert mine.ephemeral and mine.original.ephemeral
        assert not [m for m in fake.channel_messages(fake.channel_id) if has_image(m) and not m.ephemeral]
