"""A member out of credits is told privately, before anything is queued."""

from __future__ import annotations

from sqlalchemy import func, select

from db.models import Job


async def test_out_of_credits_is_ephemeral_and_queues_nothing(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(default_daily_credits=1) as bot:
        # 512x512, 8 steps costs ceil(8 / 5) = 2 credits: more than the 1 a day allowed.
        inter = await fake.slash("imagine", {"prompt": "a lighthouse", "steps": 8}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        assert inter.ephemeral and not inter.deferred
        text = " ".join(e.get("description", "") for e in inter.original.embeds)
        assert "costs 2 credits" in text and "0 of 1" not in text and "1 of 1" in text
        async with bot.service.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Job)) == 0
