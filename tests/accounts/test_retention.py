"""Retention: each guild's old finished jobs (and their ledger days) are pruned; active jobs never."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.services.accounts import AccountService
from bot.services.jobs import ImagineOptions, Origin
from db.models import Job, Output
from db.repositories import accounts as repo
from tests.accounts.helpers import hooks, result_for, service

A, B = 2_000_000_000_000_000_001, 2_000_000_000_000_000_002
USER = 2_000_000_000_000_000_003


async def test_prune_follows_each_guilds_retention(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=-1, default_retention_days=90, clock=lambda: now - timedelta(days=40))
    jobs.hooks = hooks(accounts=accounts)
    params = jobs.prepare_imagine(ImagineOptions(prompt="old", seed=1))
    ids = {}
    for name, guild in (("a_old", A), ("b_old", B), ("a_active", A)):
        ticket = await jobs.submit(command="imagine", params=dict(params),
                                   origin=Origin(user_id=USER, guild_id=guild, channel_id=3))
        ids[name] = ticket.job.id
    for name in ("a_old", "b_old"):
        await jobs.claim("main/cpu#0")
        await jobs.finished(result_for(ids[name]))
    await jobs.drain()
    async with sessions.begin() as s:
        await s.execute(update(Job).values(created_at=now - timedelta(days=40)))
    accounts.clock = lambda: now
    fresh = await jobs.submit(command="imagine", params=dict(params), origin=Origin(user_id=USER, guild_id=A, channel_id=3))

    await accounts.set_retention(guild_id=A, days=30)  # B keeps the default of 90 days
    assert await accounts.prune() == 1
    async with sessions() as s:
        left = set((await s.execute(select(Job.id))).scalars())
        assert left == {ids["b_old"], ids["a_active"], fresh.job.id}
        assert set((await s.execute(select(Output.job_id))).scalars()) == {ids["b_old"]}
        entries = await repo.ledger_entries(s, user_id=USER)
        assert {e.job_id for e in entries if e.guild_id == A} == {fresh.job.id, ids["a_active"]}, \
            "guild A's old days are gone, except what an active job still holds"
        assert {e.job_id for e in entries if e.guild_id == B} == {ids["b_old"]}
    assert await accounts.prune() == 0
