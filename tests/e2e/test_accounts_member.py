"""/quota, /queue, /cancel, /history, /show, /forget, /export and their buttons, end to end."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select, text
from sqlmodel import SQLModel

from db.models import Job, JobStatus, load_all_tables
from db.repositories import accounts as repo
from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image as _has_image


def _fields(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


async def _slash(fake, command: str, options: dict | None = None, user_id: int | None = None):  # type: ignore[no-untyped-def]
    inter = await fake.slash(command, options or {}, user_id=user_id or fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    return inter


async def _imagine(fake, prompt: str = "a red fox in snow", user_id: int | None = None, **options):  # type: ignore[no-untyped-def]
    return await _slash(fake, "imagine", {"prompt": prompt, **options}, user_id)


async def _made(fake, bot, prompt: str, **options):  # type: ignore[no-untyped-def]
    inter = await _imagine(fake, prompt, **options)
    await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
    return inter.original, await bot.service.job_for_message(inter.original.id)


async def test_quota_shows_credits_reset_and_costs_then_charges_a_job(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory) as bot:
        inter = await _slash(fake, "quota")
        assert inter.ephemeral
        (embed,) = inter.original.embeds
        assert "**250** of 250 credits left today (the bot's default)" in embed["description"]
        fields = _fields(embed)
        assert fields["Resets"].startswith("<t:") and fields["Resets"].endswith(":R>")
        assert "`tiny-sd15`: 1 credits (512×512, 4 steps)" in fields["What a default image costs"]

        _, job = await _made(fake, bot, "a lighthouse", steps=20)  # 512² x 20 steps = 4 credits
        assert job.params["credits"] == 4
        await bot.service.drain()
        embed = (await _slash(fake, "quota")).original.embeds[0]
        assert "**246** of 250" in embed["description"] and _fields(embed)["Used today"] == "4 credits"
        async with bot.service.sessions() as s:
            assert await repo.ledger_totals(s) == {"reserve": 4, "charge": 4, "refund": 0}


async def test_queue_lists_positions_and_cancel_refunds(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    engine.gate.clear()  # the first job holds the only worker
    async with start_bot(engine_factory=engine.factory) as bot:
        await _imagine(fake, "first")
        await fake.wait_for(lambda f: bot.pool.busy == 1, timeout=30)
        waiting = [await _imagine(fake, "second"), await _imagine(fake, "third")]
        # The reply is deferred before the job is stored: wait until both show their place.
        await fake.wait_for(lambda f: all(i.original.embeds for i in waiting), timeout=30)
        inter = await _slash(fake, "queue")
        (embed,) = inter.original.embeds
        values = list(_fields(embed).values())
        assert values[0].startswith("Running: step 0/4") and "first" in values[0]
        assert values[1].startswith("Queued: #1, starts ") and "second" in values[1]
        assert values[2].startswith("Queued: #2, starts ") and "third" in values[2]
        first, second, third = [int(name.split()[0][1:]) for name in _fields(embed)]

        # /cancel with a job number, then the queue's Cancel button for another.
        done = await _slash(fake, "cancel", {"job": second})
        assert done.ephemeral and done.original.content == f"Job #{second}: canceled."
        click = await fake.click(inter.original.id, f"atelier:cancel:{third}", user_id=fake.user_id)
        await click.wait_acked(3)
        # Someone else can't cancel my job.
        other = int(fake.add_member(7001, "other")["user"]["id"])
        refused = await _slash(fake, "cancel", {"job": first}, user_id=other)
        assert "belongs to someone else" in refused.original.embeds[0]["description"]
        # Nothing of theirs to cancel by default.
        nothing = await _slash(fake, "cancel", user_id=other)
        assert "no queued or running jobs" in nothing.original.embeds[0]["description"]

        engine.gate.set()
        await fake.wait_for(lambda f: any(_has_image(m) for m in f.channel_messages(fake.channel_id)), timeout=30)
        await bot.service.drain()
        async with bot.service.sessions() as s:
            statuses = {j.id: j.status for j in (await s.execute(select(Job))).scalars()}
            assert statuses == {first: JobStatus.completed, second: JobStatus.canceled, third: JobStatus.canceled}
            assert await repo.ledger_totals(s) == {"reserve": 3, "charge": 1, "refund": 2}
            assert await repo.total_usage(s) == 1
        empty = await _slash(fake, "queue")
        assert empty.original.embeds[0]["description"] == "Nothing queued or running."


async def test_cancel_stops_a_running_job_within_one_step(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine(step_seconds=0.05)
    async with start_bot(engine_factory=engine.factory) as bot:
        await _imagine(fake, "a slow one", steps=50)
        await fake.wait_for(lambda f: engine.reached, timeout=30)
        (job_id,) = engine.reached
        await fake.wait_for(lambda f: engine.reached[job_id] >= 3, timeout=30)
        inter = await _slash(fake, "cancel")  # no job number: the newest active one
        step_at_ack = engine.reached[job_id]
        assert inter.original.content == f"Job #{job_id}: stopping after the current step."
        await fake.wait_for(lambda f: any("Canceled at step" in str(m.embeds)
                                          for m in f.channel_messages(fake.channel_id)), timeout=30)
        await bot.service.drain()
        # The cancel flag was set before the reply went out: at most the step then in progress finished.
        assert 3 <= engine.reached[job_id] <= step_at_ack + 1 < 50
        job = await bot.service.get_job(job_id)
        assert job.status == JobStatus.canceled
        async with bot.service.sessions() as s:
            assert await repo.ledger_totals(s) == {"reserve": 10, "charge": 0, "refund": 10}


async def test_history_pages_show_reroll_and_rerun(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory) as bot:
        made = [await _made(fake, bot, f"picture number {n}", seed=100 + n) for n in range(6)]
        await bot.service.drain()
        inter = await _slash(fake, "history")
        assert inter.ephemeral
        embed = inter.original.embeds[0]
        names = list(_fields(embed))
        assert names[0] == f"#{made[5][1].id} · tiny-sd15 · seed 105" and len(names) == 5  # newest first
        first_value = _fields(embed)[names[0]]
        assert "picture number 5" in first_value
        message = made[5][0]
        assert f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/{message.id}" in first_value
        assert embed["footer"]["text"].startswith("Page 1 of 2 · 6 images")
        me = fake.user_id
        older = f"atelier:acct:hist:{me}:2"
        other = int(fake.add_member(7002, "other")["user"]["id"])
        stranger = await fake.click(inter.original.id, older, user_id=other)
        await stranger.wait_acked(3)
        assert "someone else's history" in stranger.original.embeds[0]["description"]
        click = await fake.click(inter.original.id, older, user_id=me)
        await click.wait_acked(3)
        page2 = inter.original.embeds[0]
        assert list(_fields(page2)) == [f"#{made[0][1].id} · tiny-sd15 · seed 100"]
        assert page2["footer"]["text"].startswith("Page 2 of 2")
        filtered = await _slash(fake, "history", {"command": "upscale"})
        assert filtered.original.embeds[0]["description"].startswith("Nothing yet")

        old = made[1][1]
        show = await _slash(fake, "show", {"job": old.id})
        await show.wait_for(lambda i: _has_image(i.original), timeout=30)
        posted = show.original
        assert not posted.ephemeral and _fields(posted.embeds[0])["Seed"] == "101"
        assert posted.custom_ids == [f"atelier:reroll:{old.id}", f"atelier:acct:rerun:{old.id}"]

        reroll = await fake.click(posted.id, f"atelier:reroll:{old.id}", user_id=other)
        await reroll.wait_for(lambda i: _has_image(i.original), timeout=30)
        child = await bot.service.job_for_message(reroll.original.id)
        assert child.parent_job_id == old.id and child.user_id == other and child.seed != old.seed

        rerun = await fake.click(posted.id, f"atelier:acct:rerun:{old.id}", user_id=other)
        await rerun.wait_for(lambda i: _has_image(i.original), timeout=30)
        again = await bot.service.job_for_message(rerun.original.id)
        assert again.parent_job_id == old.id and again.seed == old.seed == 101 and again.user_id == other
        assert again.prompt == old.prompt
        assert rerun.original.attachments[0].data == posted.attachments[0].data  # same seed, same image

        missing = await _slash(fake, "show", {"job": 999_999})
        assert "no job #999999" in missing.original.embeds[0]["description"]


async def _rows_mentioning(bot, user_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    """Every row in every table with the member's id in any column (numbers, text, JSON)."""
    load_all_tables()
    hits = []
    needle = str(user_id)
    async with bot.service.sessions() as s:
        for table in SQLModel.metadata.sorted_tables:
            rows = (await s.execute(select(table))).all()
            for row in rows:
                for value in row:
                    if value == user_id or (isinstance(value, str | bytes | dict | list)
                                            and needle in (value.decode("latin-1") if isinstance(value, bytes)
                                                           else json.dumps(value, default=str)
                                                           if not isinstance(value, str) else value)):
                        hits.append(f"{table.name}: {tuple(row)[:4]}")
        tables = (await s.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))).scalars().all()
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= set(tables)
    return hits


async def test_forget_needs_confirmation_and_leaves_no_personal_row(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    member = int(fake.add_member(7_777_777_777_777_777, "forgetful")["user"]["id"])
    keeper = int(fake.add_member(7003, "keeper")["user"]["id"])
    async with start_bot(engine_factory=engine.factory) as bot:
        for n in range(2):
            inter = await _imagine(fake, f"private idea {n}", user_id=member)
            await inter.wait_for(lambda i: _has_image(i.original), timeout=30)
        kept = await _imagine(fake, "someone else's", user_id=keeper)
        await kept.wait_for(lambda i: _has_image(i.original), timeout=30)
        engine.gate.clear()
        running = await _imagine(fake, "still running", user_id=member)
        queued = await _imagine(fake, "still queued", user_id=member)
        # Both jobs are in the database (the reply is deferred before the job is stored).
        await fake.wait_for(lambda f: all(i.original.embeds for i in (running, queued)), timeout=30)
        await fake.wait_for(lambda f: bot.pool.busy == 1, timeout=30)
        await bot.accounts.set_quota(guild_id=fake.guild_id, scope="member", target_id=member, credits=99)
        await bot.service.drain()
        assert await _rows_mentioning(bot, member)

        ask = await _slash(fake, "forget", user_id=member)
        assert ask.ephemeral and ask.original.custom_ids == [f"atelier:acct:forget:{member}"]
        assert await _rows_mentioning(bot, member), "asking must not delete anything"
        intruder = await fake.click(ask.original.id, f"atelier:acct:forget:{member}", user_id=keeper)
        await intruder.wait_acked(3)
        assert "Only the member who asked" in intruder.original.embeds[0]["description"]

        confirm = await fake.click(ask.original.id, f"atelier:acct:forget:{member}", user_id=member)
        await confirm.wait_acked(3)
        engine.gate.set()
        await fake.wait_for(lambda f: bot.pool.busy == 0, timeout=30)
        await asyncio.sleep(0.2)
        await bot.service.drain()
        assert ask.original.embeds[0]["title"] == "Forgotten" and ask.original.components == []
        # Only server decisions about the member and today's usage stay (see the Security model in
        # the README): nothing personal, no prompt.
        left = await _rows_mentioning(bot, member)
        assert sorted(row.split(":")[0] for row in left) == ["quota_settings", "quota_usage"], left
        async with bot.service.sessions() as s:
            left = (await s.execute(select(Job))).scalars().all()
            assert [j.user_id for j in left] == [keeper]
            assert await repo.ledger_totals(s, user_id=keeper) == {"reserve": 1, "charge": 1, "refund": 0}


async def test_export_dms_a_json_file(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory) as bot:
        _, job = await _made(fake, bot, "exported idea", seed=5)
        await bot.service.drain()
        inter = await _slash(fake, "export")
        await inter.wait_for(lambda i: i.original and not i.original.loading, timeout=10)
        assert inter.ephemeral and "Sent to your DMs" in inter.original.content
        (dm,) = fake.dm_messages(fake.user_id)
        (attachment,) = dm.attachments
        assert attachment.filename == f"atelier-export-{fake.user_id}.json"
        data = json.loads(attachment.data)
        assert data["user_id"] == str(fake.user_id)
        (exported,) = data["jobs"]
        assert exported["id"] == job.id and exported["prompt"] == "exported idea" and exported["seed"] == 5
        assert exported["link"].endswith(f"/{job.message_id}")
        assert [c["kind"] for c in data["credits"]] == ["reserve", "charge"]

        fake.close_dms(fake.user_id)
        closed = await _slash(fake, "export")
        await closed.wait_for(lambda i: i.original and not i.original.loading, timeout=10)
        assert "can't send you a direct message" in closed.original.content
