"""/admin pause|resume|stats|quota|retention|sync end to end, and who may use them."""

from __future__ import annotations

import asyncio

from db.models import JobStatus
from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image as _has_image

MANAGE_GUILD = 1 << 5


def _fields(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


async def _slash(fake, command: str, options: dict | None = None, user_id: int | None = None):  # type: ignore[no-untyped-def]
    inter = await fake.slash(command, options or {}, user_id=user_id or fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    return inter


def _text(inter) -> str:  # type: ignore[no-untyped-def]
    message = inter.original
    return message.content + " ".join(e.get("description", "") for e in message.embeds)


async def test_admin_needs_manage_server_and_sync_needs_an_owner(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    admin = int(fake.add_member(8001, "admin", permissions=MANAGE_GUILD)["user"]["id"])
    async with start_bot(engine_factory=ScriptedEngine().factory, owner_ids=str(fake.owner_id)) as bot:
        assert int(fake.commands["admin"]["default_member_permissions"]) == MANAGE_GUILD
        for sub in ("pause", "resume", "stats", "quota", "retention", "sync"):
            refused = await _slash(fake, f"admin {sub}")
            assert refused.ephemeral and "Manage Server" in _text(refused), sub
        assert not bot.pool.paused
        not_owner = await _slash(fake, "admin sync", user_id=admin)
        assert "Only the bot's owners" in _text(not_owner)
        syncs = fake.sync_count
        synced = await _slash(fake, "admin sync", user_id=fake.owner_id)
        await synced.wait_for(lambda i: i.original and not i.original.loading, timeout=10)
        assert synced.original.content == "Commands synced." and fake.sync_count == syncs + 1


async def test_pause_holds_the_queue_and_resume_runs_it(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    admin = int(fake.add_member(8002, "admin", permissions=MANAGE_GUILD)["user"]["id"])
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory) as bot:
        paused = await _slash(fake, "admin pause", user_id=admin)
        assert paused.ephemeral and paused.original.content.startswith("Paused")
        inter = await _slash(fake, "imagine", {"prompt": "waits for resume"})
        await inter.wait_for(lambda i: i.original.embeds and i.original.embeds[0]["title"] == "Queued", timeout=10)
        await asyncio.sleep(0.5)
        job = await bot.service.job_for_message(inter.original.id)
        assert job.status == JobStatus.queued and engine.runs == []
        resumed = await _slash(fake, "admin resume", user_id=admin)
        assert resumed.original.content.startswith("Resumed")
        await inter.wait_for(lambda i: _has_image(i.original), timeout=30)
        again = await _slash(fake, "admin resume", user_id=admin)
        assert again.original.content == "This server's queue is not paused."


async def test_stats_embed(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory) as bot:
        for prompt in ("one", "two"):
            inter = await _slash(fake, "imagine", {"prompt": prompt})
            await inter.wait_for(lambda i: _has_image(i.original), timeout=30)
        await bot.service.drain()
        stats = await _slash(fake, "admin stats", user_id=fake.owner_id)
        (embed,) = stats.original.embeds
        fields = _fields(embed)
        assert embed["title"] == "Atelier, last 7 days"
        assert fields["Jobs"] == "2 (1 members)" and fields["Completed"] == "2" and fields["Failed"] == "0"
        assert fields["Top models"] == "`tiny-sd15`: 2" and fields["GPU time"].endswith(" s")
        assert fields["Jobs per day"].endswith(": 2")


async def test_quota_for_server_roles_and_members(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    patron_role = int(fake.add_role("Patron")["id"])
    patron = int(fake.add_member(8003, "patron", roles=[patron_role])["user"]["id"])
    plain = fake.user_id
    owner = fake.owner_id
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory):
        assert _text(await _slash(fake, "admin quota", {"credits": 3}, owner)) == \
            "Everyone on this server (default): 3 credits a day."
        assert _text(await _slash(fake, "admin quota", {"credits": 8, "role": patron_role}, owner)) == \
            f"<@&{patron_role}>: 8 credits a day."
        both = await _slash(fake, "admin quota", {"credits": 1, "role": patron_role, "member": plain}, owner)
        assert "not both" in _text(both)

        # 512² at 20 steps costs 4 credits: more than the default of 3, within the Patron tier of 8.
        refused = await _slash(fake, "imagine", {"prompt": "too dear", "steps": 20}, plain)
        await refused.wait_for(lambda i: i.original and i.original.embeds, timeout=10)
        assert refused.original.embeds[0]["title"] == "Out of credits"  # replaces the deferred "thinking…"
        assert "costs 4 credits and you have 3 of 3 left today (this server's default)" in _text(refused)
        assert "<t:" in _text(refused)
        ok = await _slash(fake, "imagine", {"prompt": "patron's", "steps": 20}, patron)
        await ok.wait_for(lambda i: _has_image(i.original), timeout=30)
        quota = await _slash(fake, "quota", user_id=patron)
        assert "**4** of 8 credits left today (your role's tier)" in _text(quota)

        assert _text(await _slash(fake, "admin quota", {"credits": 4, "member": plain}, owner)) == \
            f"<@{plain}>: 4 credits a day."
        ok = await _slash(fake, "imagine", {"prompt": "now affordable", "steps": 20}, plain)
        await ok.wait_for(lambda i: _has_image(i.original), timeout=30)
        assert "**0** of 4" in _text(await _slash(fake, "quota", user_id=plain))
        removed = await _slash(fake, "admin quota", {"member": plain}, owner)
        assert "removed" in _text(removed)
        assert "of 3 credits left today (this server's default)" in _text(await _slash(fake, "quota", user_id=plain))


async def test_retention_setting(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        done = await _slash(fake, "admin retention", {"days": 30}, fake.owner_id)
        assert "kept for 30 days" in _text(done)
        assert await bot.accounts.retention_for(fake.guild_id) == 30
        bad = await _slash(fake, "admin retention", {"days": 0}, fake.owner_id)
        assert "Retention must be 1-3650 days" in _text(bad)
        default = await _slash(fake, "admin retention", {}, fake.owner_id)
        assert "kept for 90 days" in _text(default)
