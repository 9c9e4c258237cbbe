"""/export covers moderation cases and is built off the loop; retention prunes cases (issue 14, item 7)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

import bot.services.accounts as accounts_module
from bot.services.accounts import AccountService
from bot.services.jobs import ImagineOptions, Origin
from db.models_moderation import Ban, ModerationCase
from tests.accounts.helpers import service

MEMBER, OTHER, MOD = 3_000_000_000_000_000_001, 3_000_000_000_000_000_002, 3_000_000_000_000_000_003
GUILD = 3_000_000_000_000_000_010


async def test_export_has_the_cases_about_the_member_and_is_built_off_the_loop(sessions, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=-1)
    await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a cat", seed=1)),
                      origin=Origin(user_id=MEMBER, guild_id=GUILD, channel_id=1))
    async with sessions.begin() as s:
        s.add(ModerationCase(user_id=MEMBER, guild_id=GUILD, action="block", categories=["violence"],
                             prompt="a gory scene", reason="violence", moderator_id=MOD))
        s.add(ModerationCase(user_id=OTHER, guild_id=GUILD, action="warn", categories=[], prompt="someone else's"))
    built_on: list[threading.Thread] = []
    real = accounts_module._export_document

    def spy(*args):  # type: ignore[no-untyped-def]
        built_on.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(accounts_module, "_export_document", spy)
    data = json.loads(await accounts.export(user_id=MEMBER))
    assert built_on and built_on[0] is not threading.main_thread()
    (case,) = data["moderation_cases"]
    assert case["action"] == "block" and case["prompt"] == "a gory scene" and case["categories"] == ["violence"]
    assert "moderator_id" not in case and str(MOD) not in json.dumps(data)
    assert len(data["jobs"]) == 1 and "init_image" not in json.dumps(data)


async def test_retention_prunes_old_cases_and_keeps_bans(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    now = datetime(2026, 6, 30, 12, tzinfo=UTC)
    jobs = service(sessions, tmp_path)
    accounts = AccountService(jobs, default_daily=-1, default_retention_days=30, clock=lambda: now)
    ticket = await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a", seed=1)),
                               origin=Origin(user_id=MEMBER, guild_id=GUILD, channel_id=1))
    assert ticket.job.id is not None
    async with sessions.begin() as s:
        s.add(ModerationCase(user_id=MEMBER, guild_id=GUILD, action="block", categories=[],
                             created_at=now - timedelta(days=40)))
        s.add(ModerationCase(user_id=MEMBER, guild_id=GUILD, action="warn", categories=[],
                             created_at=now - timedelta(days=3)))
        s.add(ModerationCase(user_id=MEMBER, guild_id=None, action="block", categories=[],
                             created_at=now - timedelta(days=40)))
        s.add(Ban(guild_id=GUILD, user_id=MEMBER, reason="spam", created_at=now - timedelta(days=400)))
    await accounts.prune()
    async with sessions() as s:
        left = (await s.execute(select(ModerationCase.action, ModerationCase.guild_id))).all()
        assert sorted(left, key=str) == [("warn", GUILD)]
        assert (await s.execute(select(Ban.user_id))).scalars().all() == [MEMBER]
