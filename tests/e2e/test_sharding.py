"""Sharding end to end: the bot as an AutoShardedBot against the fake Discord, one process running
every shard, and two instances sharing one database, each running its own ATELIER_SHARD_IDS.

https://discord.com/developers/docs/events/gateway#sharding: a guild's events (interactions too) go
only to shard ``(guild_id >> 22) % shard_count``; DMs only to shard 0.
"""

from __future__ import annotations

from typing import Any

import discord

from db.models import JobStatus


def _has_image(message: Any) -> bool:
    return message is not None and any(a.filename.endswith(".png") for a in message.attachments)


async def _imagine_delivers_a_png(fake: Any) -> Any:
    inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", "seed": 7, "steps": 2},
                             user_id=fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
    (attachment,) = inter.original.attachments
    assert attachment.data.startswith(b"\x89PNG\r\n\x1a\n")
    return inter


def _count_interactions(bot: discord.Client) -> list[int]:
    seen: list[int] = []

    async def on_interaction(interaction: discord.Interaction) -> None:
        seen.append(interaction.id)

    bot.add_listener(on_interaction, "on_interaction")
    return seen


async def test_one_process_runs_discords_recommended_shards(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    fake.recommended_shards = 2  # no ATELIER_SHARD_COUNT: the bot follows GET /gateway/bot
    owner = fake.shard_of_guild(2)
    async with start_bot() as bot:
        assert isinstance(bot, discord.AutoShardedClient)
        assert bot.shard_count == 2 and sorted(bot.shards) == [0, 1]
        assert sorted(tuple(d["shard"]) for d in fake.gateway.identifies) == [(0, 2), (1, 2)]
        sessions = {s.shard: s for s in fake.gateway.sessions}
        assert set(sessions) == {(0, 2), (1, 2)}
        # READY echoes the shard; only the guild's shard gets its GUILD_CREATE.
        assert [s.events.count("GUILD_CREATE") for _, s in sorted(sessions.items())] == [
            int(owner == 0), int(owner == 1)]
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None and guild.shard_id == owner
        assert [shard for shard, _ in bot.latencies] == [0, 1] and bot.shard_id is None  # per shard, not one
        assert "imagine" in fake.commands and bot.synced

        inter = await _imagine_delivers_a_png(fake)
        assert sessions[(owner, 2)].events.count("INTERACTION_CREATE") == 1
        assert sessions[(1 - owner, 2)].events.count("INTERACTION_CREATE") == 0
        await bot.service.drain()
        job = await bot.service.job_for_message(inter.original.id)
        assert job is not None and job.status == JobStatus.completed and job.delivered


async def test_two_processes_split_the_shards_over_one_database(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    owner = fake.shard_of_guild(2)
    async with start_bot(shard_count=2, shard_ids="0") as first, \
            start_bot(shard_count=2, shard_ids="1") as second:
        bots = {0: first, 1: second}
        seen = {shard: _count_interactions(bot) for shard, bot in bots.items()}
        assert first.shards.keys() == {0} and second.shards.keys() == {1}
        assert sorted(tuple(d["shard"]) for d in fake.gateway.identifies) == [(0, 2), (1, 2)]
        # Only the guild's shard knows the guild; only shard 0's process synced the commands.
        assert bots[owner].get_guild(fake.guild_id) is not None
        assert bots[1 - owner].get_guild(fake.guild_id) is None
        assert first.synced and not second.synced and fake.sync_count == 1

        inter = await _imagine_delivers_a_png(fake)
        assert len(seen[owner]) == 1 and seen[1 - owner] == []
        for bot in bots.values():
            await bot.service.drain()
        job = await bots[1 - owner].service.job_for_message(inter.original.id)  # one database
        assert job is not None and job.status == JobStatus.completed and job.delivered


async def test_a_process_without_shard_zero_never_syncs_commands(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(shard_count=3, shard_ids="1,2") as bot:
        assert sorted(bot.shards) == [1, 2] and not bot.synced and fake.sync_count == 0
        assert sorted(tuple(d["shard"]) for d in fake.gateway.identifies) == [(1, 3), (2, 3)]
