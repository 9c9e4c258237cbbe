"""Cost model, allowance rules and the credit ledger, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

import bot.services.quotas as quotas_module
from bot.errors import QuotaExceeded, Refused
from bot.services.accounts import AccountService
from bot.services.jobs import ImagineOptions, Origin
from bot.services.quotas import job_credits, next_reset
from db.models import Job, JobStatus
from db.models_accounts import QuotaScope, QuotaUsage
from db.repositories import accounts as repo
from tests.accounts.helpers import hooks, result_for, service
from tests.db.conftest import statements_sent

GUILD = 1_000_000_000_000_000_001
USER = 1_000_000_000_000_000_002


def test_cost_model_grows_with_pixels_steps_frames_and_count() -> None:
    base = {"width": 512, "height": 512, "steps": 25, "count": 1}
    assert job_credits(base) == 5
    assert job_credits({**base, "width": 1024, "height": 1024, "steps": 30}) == 24   # SDXL
    assert job_credits({**base, "width": 1024, "height": 1024, "steps": 4}) == 4     # Lightning 4-step
    assert job_credits({**base, "steps": 1}) == 1                                    # Turbo: never below 1
    assert job_credits({**base, "count": 4}) == 20
    assert job_credits({**base, "frames": 16}) == 80
    assert job_credits({**base, "steps": 50}) == 2 * job_credits(base)
    assert job_credits({**base, "width": 1024}) == 2 * job_credits(base)


def test_reset_is_next_utc_midnight() -> None:
    assert next_reset(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == datetime(2026, 3, 2, tzinfo=UTC)


def _origin(user_id: int = USER, guild_id: int | None = GUILD) -> Origin:
    return Origin(user_id=user_id, user_name="someone", guild_id=guild_id, channel_id=5)


async def test_allowance_rules_member_then_best_role_then_guild_then_owner(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    roles = {USER: [11, 12]}
    accounts = AccountService(service(sessions, tmp_path), default_daily=7,
                              roles_of=lambda g, u: roles.get(u, []))
    assert (await accounts.status(user_id=USER, guild_id=GUILD)).allowance == 7
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.guild, target_id=GUILD, credits=20)
    assert (await accounts.status(user_id=USER, guild_id=GUILD)).allowance == 20
    assert (await accounts.status(user_id=USER, guild_id=None)).allowance == 7  # DMs: the owner's default
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.role, target_id=11, credits=50)
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.role, target_id=12, credits=80)
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.role, target_id=13, credits=500)  # not theirs
    status = await accounts.status(user_id=USER, guild_id=GUILD)
    assert (status.allowance, status.source) == (80, "your role's tier")
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.member, target_id=USER, credits=3)
    assert (await accounts.status(user_id=USER, guild_id=GUILD)).allowance == 3
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.member, target_id=USER, credits=-1)
    assert (await accounts.status(user_id=USER, guild_id=GUILD)).allowance is None  # unlimited
    await accounts.set_quota(guild_id=GUILD, scope=QuotaScope.member, target_id=USER, credits=None)
    assert (await accounts.status(user_id=USER, guild_id=GUILD)).allowance == 80


async def test_fifty_concurrent_submissions_against_a_quota_of_ten(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=10)
    jobs.hooks = hooks(accounts=accounts)
    params = jobs.prepare_imagine(ImagineOptions(prompt="a fox", seed=1))
    assert job_credits(params) == 1
    # The member is new: their first row is written by fifty submissions at once.
    async def one(n: int):  # type: ignore[no-untyped-def]
        return await jobs.submit(command="imagine", params=dict(params), origin=_origin())

    results = await asyncio.gather(*(one(n) for n in range(50)), return_exceptions=True)
    accepted = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(accepted) == 10 and len(refused) == 40, [r for r in results if isinstance(r, BaseException)
                                                        and not isinstance(r, QuotaExceeded)][:3]
    assert "you have 0 of 10 left today" in refused[0].message and "<t:" in refused[0].message

    # Half are delivered (charged), the other half fail or are canceled (refunded).
    ids = sorted(t.job.id for t in accepted)
    for job_id in ids[:5]:
        request = await jobs.claim("main/cpu#0")
        assert request is not None and request.job_id == job_id
        await jobs.finished(result_for(job_id))
    await jobs.drain()
    request = await jobs.claim("main/cpu#0")
    await jobs.failed(request.job_id, RuntimeError("boom"))
    for job_id in ids[6:]:
        await jobs.cancel(job_id=job_id, user_id=USER)
    await jobs.drain()

    async with sessions() as s:
        totals = await repo.ledger_totals(s)
        assert totals == {"reserve": 10, "charge": 5, "refund": 5}
        assert totals["reserve"] == totals["charge"] + totals["refund"]
        assert await repo.total_usage(s, user_id=USER) == 5
        statuses = [j.status for j in (await s.execute(select(Job).order_by(Job.id))).scalars()]
    assert sorted(statuses) == sorted([JobStatus.completed] * 5 + [JobStatus.failed] + [JobStatus.canceled] * 4)
    status = await accounts.status(user_id=USER, guild_id=GUILD)
    assert (status.used, status.left) == (5, 5)


async def test_charge_and_refund_happen_once_each(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=100)
    jobs.hooks = hooks(accounts=accounts)
    params = {**jobs.prepare_imagine(ImagineOptions(prompt="a fox", seed=1, count=4)), "width": 512, "height": 512}
    ticket = await jobs.submit(command="imagine", params=params, origin=_origin())
    assert ticket.job.params["credits"] == job_credits(params) == 4  # 4 images x 512² x 4 steps / 5
    await jobs.claim("main/cpu#0")
    await jobs.finished(result_for(ticket.job.id))
    await jobs.drain()
    await jobs.deliver(ticket.job.id)  # a second delivery attempt must not charge again
    async with sessions.begin() as s:
        assert await repo.refund(s, job_id=ticket.job.id) == 0  # nothing open to refund after the charge
        assert await repo.ledger_totals(s) == {"reserve": 4, "charge": 4, "refund": 0}
        assert await repo.total_usage(s) == 4


async def test_a_refusal_after_the_reservation_rolls_it_back(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def refuse(session, job, submission):  # type: ignore[no-untyped-def]
        raise Refused("no", categories=["test"])

    jobs = service(sessions, tmp_path)
    jobs.hooks = hooks(accounts=AccountService(jobs, default_daily=10))
    jobs.hooks.before_submit.append(refuse)  # after the reservation
    with pytest.raises(Refused):
        await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="x")),
                          origin=_origin())
    async with sessions() as s:
        assert await repo.ledger_totals(s) == {"reserve": 0, "charge": 0, "refund": 0}
        assert await repo.total_usage(s) == 0
        assert (await s.execute(select(Job))).scalars().first() is None


async def test_reroll_and_rerun_are_charged_to_whoever_pressed(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = USER + 1
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=10)
    jobs.hooks = hooks(accounts=accounts)
    first = await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="x", seed=3)),
                              origin=_origin())
    rerolled = await jobs.reroll(job_id=first.job.id, origin=_origin(other))
    rerun = await accounts.rerun(job_id=first.job.id, origin=_origin(other))
    assert rerun.job.seed == first.job.seed and rerolled.job.user_id == rerun.job.user_id == other
    assert (await accounts.status(user_id=USER, guild_id=GUILD)).used == 1
    assert (await accounts.status(user_id=other, guild_id=GUILD)).used == 2


def _snapshot_reads(accounts: AccountService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry for each database read of a member's quota snapshot from now on."""
    reads: list[int] = []
    snapshot = accounts._snapshot

    async def counted(*args):  # type: ignore[no-untyped-def]
        reads.append(1)
        return await snapshot(*args)

    monkeypatch.setattr(accounts, "_snapshot", counted)
    return reads


async def test_the_next_command_is_let_through_from_the_snapshot_and_only_a_fresh_read_refuses(
        sessions, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(quotas_module, "PRECHECK_BUDGET", 10.0)  # a slow CI database still answers
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=3)
    jobs.hooks = hooks(accounts=accounts)
    reads = _snapshot_reads(accounts, monkeypatch)
    params = jobs.prepare_imagine(ImagineOptions(prompt="a fox", seed=1))
    assert job_credits(params) == 1
    for _ in range(3):  # one read, then the member's own reservations keep the snapshot current
        await accounts.before_acknowledge(dict(params), _origin())
        await jobs.submit(command="imagine", params=dict(params), origin=_origin())
    assert len(reads) == 1
    # Meanwhile another process gave the member's credits back: the snapshot (3 of 3 used, counted
    # here) may not refuse on its own, so the check reads again and lets the command through.
    async with sessions.begin() as s:
        await s.execute(update(QuotaUsage).values(used=0))
    await accounts.before_acknowledge(dict(params), _origin())
    assert len(reads) == 2
    await jobs.submit(command="imagine", params=dict(params), origin=_origin())
    async with sessions.begin() as s:
        await s.execute(update(QuotaUsage).values(used=3))  # and another spent the rest
    await accounts.before_acknowledge(dict(params), _origin())  # 1 of 3 by the snapshot: through
    with pytest.raises(QuotaExceeded):  # the reservation decides
        await jobs.submit(command="imagine", params=dict(params), origin=_origin())
    with pytest.raises(QuotaExceeded):  # and what it read refuses the next command before acknowledging
        await accounts.before_acknowledge(dict(params), _origin())
    assert len(reads) == 2


async def test_a_charge_is_one_statement_and_happens_once(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    jobs.hooks = hooks(accounts=AccountService(jobs, default_daily=100))
    params = {**jobs.prepare_imagine(ImagineOptions(prompt="a fox", seed=1)), "width": 512, "height": 512}
    ticket = await jobs.submit(command="imagine", params=params, origin=_origin())
    with statements_sent(sessions) as statements:
        async with sessions.begin() as s:
            assert await repo.charge(s, job_id=ticket.job.id) == job_credits(params)
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO credit_ledger")
    async with sessions.begin() as s:
        assert await repo.charge(s, job_id=ticket.job.id) == 0  # charged already
        assert await repo.refund(s, job_id=ticket.job.id) == 0  # and so nothing is left to refund
        assert await repo.charge(s, job_id=ticket.job.id + 1) == 0  # no reservation at all
        assert await repo.ledger_totals(s) == {"reserve": job_credits(params), "charge": job_credits(params), "refund": 0}


async def test_a_reservation_is_one_guarded_upsert_and_a_ledger_row(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    tickets = [await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a fox")),
                                 origin=_origin()) for _ in range(4)]
    day = "2026-11-29"

    async def reserve(ticket, credits: int, allowance: int | None):  # type: ignore[no-untyped-def]
        async with sessions.begin() as s:
            return await repo.reserve(s, job_id=ticket.job.id, user_id=USER, guild_id=GUILD, day=day,
                                      credits=credits, allowance=allowance)

    assert await reserve(tickets[0], 6, 5) is None  # more than the whole allowance: nothing is written
    with statements_sent(sessions) as statements:
        assert await reserve(tickets[0], 3, 5) == 3  # the day's first: its row is created
    assert [" ".join(q.split()[:3]) for q in statements] == ["INSERT INTO quota_usage", "INSERT INTO credit_ledger"]
    assert await reserve(tickets[1], 3, 5) is None  # 6 > 5: refused, nothing held
    assert await reserve(tickets[1], 2, 5) == 5  # exactly the allowance
    assert await reserve(tickets[2], 1, 5) is None
    assert await reserve(tickets[2], 7, None) == 12  # unlimited
    async with sessions() as s:
        assert await repo.used_today(s, user_id=USER, guild_id=GUILD, day=day) == 12
        assert await repo.used_today(s, user_id=USER, guild_id=GUILD + 1, day=day) == 0
        assert await repo.ledger_totals(s) == {"reserve": 12, "charge": 0, "refund": 0}
    async with sessions.begin() as s:
        assert await repo.refund(s, job_id=tickets[2].job.id) == 7
    assert await reserve(tickets[3], 7, 7) is None  # 5 held + 7 > 7
    assert await reserve(tickets[3], 2, 7) == 7


async def test_in_a_burst_the_precheck_reads_nothing_and_submissions_leave_the_snapshot(
        sessions, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Burst:  # many commands are waiting for their acknowledgement
        def unanswered(self) -> int:
            return 5

        async def quiet(self) -> None:
            return None

    jobs = service(sessions, tmp_path)
    jobs.acks = Burst()  # type: ignore[assignment]
    accounts = AccountService(jobs, default_daily=2)
    jobs.hooks = hooks(accounts=accounts)
    reads = _snapshot_reads(accounts, monkeypatch)
    params = jobs.prepare_imagine(ImagineOptions(prompt="a fox", seed=1))
    await accounts.before_acknowledge(dict(params), _origin())  # acknowledged at once, nothing read
    assert reads == [] and not accounts._loading
    for _ in range(2):
        await jobs.submit(command="imagine", params=dict(params), origin=_origin())
        await accounts.before_acknowledge(dict(params), _origin())  # 1, then 2 of 2: let through
    with pytest.raises(QuotaExceeded):
        await jobs.submit(command="imagine", params=dict(params), origin=_origin())
    with pytest.raises(QuotaExceeded, match="0 of 2 left"):  # refused before acknowledging, still no read
        await accounts.before_acknowledge(dict(params), _origin())
    assert reads == []
