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


async def test_refusal_after_the_acknowledgement_stays_private(fake, start_bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Under a burst the pre-acknowledgement check may not wait for the database; the atomic check at
    submission refuses instead, and the public "thinking..." placeholder is replaced by a private reply."""
    import bot.services.quotas

    monkeypatch.setattr(bot.services.quotas, "PRECHECK_BUDGET", 0)
    async with start_bot(default_daily_credits=1) as bot_:
        inter = await fake.slash("imagine", {"prompt": "a lighthouse", "steps": 8}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        assert inter.deferred, "the check had no time, so the command was acknowledged first"
        await inter.wait_for(lambda i: i.followups, timeout=10)
        (reply,) = inter.followups
        assert reply.ephemeral and "costs 2 credits" in reply.embeds[0]["description"]
        assert inter.original.deleted, "the public placeholder is gone"
        assert not [m for m in fake.channel_messages(fake.channel_id) if not m.deleted and not m.ephemeral and "credits" in str(m.embeds)]
        async with bot_.service.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Job)) == 0
