"""Moderation's verdict on a prompt is worked out once, before the job's write transaction opens,
and travels to the submission as a value."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import event, select

from bot.errors import Refused
from bot.services.accounts import AccountService
from bot.services.hooks import Hooks
from bot.services.jobs import ImagineOptions, Origin
from bot.services.moderation import ModerationService
from bot.services.quotas import job_credits
from db.engine import create_sessionmaker
from db.models import Job
from moderation import Moderator
from moderation.policy import SAFETY_NEGATIVE
from tests.accounts.helpers import hooks, service

GUILD = 1_000_000_000_000_000_001


def _origin(user_id: int, **kw) -> Origin:  # type: ignore[no-untyped-def]
    return Origin(user_id=user_id, user_name="someone", guild_id=GUILD, channel_id=5, **kw)


class Watched(ModerationService):
    """Notes when the prompt checks run relative to the write transactions the database sees."""

    def __init__(self, sessions, log: list[str]) -> None:  # type: ignore[no-untyped-def]
        # as the bot wires it: lookups through read-only sessions (db/engine.py)
        super().__init__(sessions, moderator=Moderator(semantic=False),
                         reads=create_sessionmaker(sessions.kw["bind"], readonly=True))
        self.log = log
        self.verdict_hook = lambda: None

    async def verdict(self, prompt, negative, **kw):  # type: ignore[no-untyped-def]
        self.log.append(f"verdict {prompt}")
        self.verdict_hook()
        return await super().verdict(prompt, negative, **kw)

    async def _rules_verdict(self, prompt, negative, **kw):  # type: ignore[no-untyped-def]
        self.log.append(f"verdict {prompt}")
        return await super()._rules_verdict(prompt, negative, **kw)


class WriteFlag:
    """The job service's sessionmaker, noting whether one of its write transactions is open."""

    def __init__(self, sessions) -> None:  # type: ignore[no-untyped-def]
        self.sessions = sessions
        self.open = 0

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.sessions(*args, **kwargs)

    @contextlib.asynccontextmanager
    async def begin(self):  # type: ignore[no-untyped-def]
        async with self.sessions.begin() as session:
            self.open += 1
            try:
                yield session
            finally:
                self.open -= 1


async def test_the_verdict_comes_before_the_write_transaction(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log: list[str] = []
    jobs = service(sessions, tmp_path)
    flag = jobs.sessions = WriteFlag(sessions)
    moderation = Watched(sessions, log)
    jobs.hooks = hooks(moderation=moderation)
    moderation.verdict_hook = lambda: log.append(f"write transaction open: {bool(flag.open)}")
    ticket = await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a red fox")),
                               origin=_origin(1))
    assert ticket.job.id is not None
    assert log == ["verdict a red fox", "write transaction open: False"]


async def test_a_screened_refusal_still_leaves_no_job(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    log: list[str] = []
    moderation = Watched(sessions, log)
    jobs.hooks = hooks(moderation=moderation)
    with pytest.raises(Refused) as info:
        await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a nude woman, nsfw")),
                          origin=_origin(2))
    assert "sexual" in str(info.value.categories)
    async with sessions() as s:
        assert (await s.execute(select(Job))).scalars().first() is None
    assert log == ["verdict a nude woman, nsfw"]  # judged once: before_submit enforced the screen's verdict


async def test_an_unscreened_submission_is_still_checked(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Hooks wired without moderation's screen: before_submit judges the prompt itself."""
    log: list[str] = []
    jobs = service(sessions, tmp_path)
    moderation = Watched(sessions, log)
    jobs.hooks = Hooks(before_submit=[moderation.before_submit])
    with pytest.raises(Refused):
        await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a nude woman, nsfw")),
                          origin=_origin(3))
    assert log == ["verdict a nude woman, nsfw"]


async def test_the_job_row_is_written_once_with_its_safety_negative_and_cost(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    jobs.hooks = hooks(moderation=Watched(sessions, []), accounts=AccountService(jobs, default_daily=100))
    statements: list[str] = []

    def note(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(" ".join(statement.split()))

    bind = sessions.kw["bind"].sync_engine
    event.listen(bind, "before_cursor_execute", note)
    try:
        ticket = await jobs.submit(command="imagine", params=jobs.prepare_imagine(
            ImagineOptions(prompt="a red fox", negative="blurry", steps=4)), origin=_origin(4))
    finally:
        event.remove(bind, "before_cursor_execute", note)
    assert [s for s in statements if s.startswith("UPDATE jobs")] == []
    async with sessions() as s:
        stored = await s.get(Job, ticket.job.id)
    assert stored is not None
    assert stored.params["negative_prompt"] == f"blurry, {SAFETY_NEGATIVE}" and stored.params["safety_negative"]
    assert stored.params["credits"] == job_credits(stored.params)


async def test_the_check_before_the_acknowledgement_stands_for_the_same_prompt(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The command tree's rule check travels on the Origin: with no semantic layer to add, the same
    text in the same place is not judged again; other text (e.g. a prompt a command built) is."""
    log: list[str] = []
    jobs = service(sessions, tmp_path)
    moderation = Watched(sessions, log)
    jobs.hooks = hooks(moderation=moderation)
    checked = await moderation.precheck("a red fox", "", user_id=6, guild_id=GUILD, channel_id=5, nsfw_channel=False)
    assert log == ["verdict a red fox"]
    ticket = await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a red fox")),
                               origin=_origin(6, prompt_verdict=checked))
    assert log == ["verdict a red fox"]  # once per submission
    assert ticket.job.params["safety_negative"]
    await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a grey wolf")),
                      origin=_origin(6, prompt_verdict=checked))
    assert log[1:] == ["verdict a grey wolf"]


async def test_a_rules_only_check_does_not_stand_once_the_semantic_layer_is_ready(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    log: list[str] = []
    jobs = service(sessions, tmp_path)
    moderation = Watched(sessions, log)
    jobs.hooks = hooks(moderation=moderation)
    checked = await moderation.precheck("a red fox", "", user_id=7, guild_id=GUILD, channel_id=5, nsfw_channel=False)
    moderation.semantic_ready = True
    await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a red fox")),
                      origin=_origin(7, prompt_verdict=checked))
    assert log == ["verdict a red fox", "verdict a red fox"]  # the rules' verdict, then every layer's


async def test_short_prompts_are_checked_on_the_loop_and_long_ones_in_a_thread(sessions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from moderation import Action

    moderation = ModerationService(sessions, moderator=Moderator(semantic=False),
                                   reads=create_sessionmaker(sessions.kw["bind"], readonly=True))
    handed: list[str] = []
    real = asyncio.to_thread

    async def to_thread(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        handed.append(args[0])
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    short = await moderation.verdict("a red fox", "", guild_id=GUILD, nsfw_channel=False, semantic=False)
    assert short.action is Action.ALLOW and handed == []  # no thread hop for a check this small
    blocked = await moderation.verdict("a nude woman, nsfw", "", guild_id=GUILD, nsfw_channel=False, semantic=False)
    assert blocked.action is Action.BLOCK and handed == []  # the same rules, on the loop
    long_prompt = "a red fox in a snowy field at dawn, " * 12
    await moderation.verdict(long_prompt, "", guild_id=GUILD, nsfw_channel=False, semantic=False)
    assert handed == [long_prompt]


async def test_with_a_model_layer_to_add_the_rules_are_not_run_again(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """When the semantic layer is loaded the submission judges the prompt again, but only with the
    model layers: the rule layers' reading from before the acknowledgement is carried, not redone.
    Other text (or another server's policy) is read afresh."""
    jobs = service(sessions, tmp_path)
    moderation = Watched(sessions, [])
    moderation.semantic_ready = True  # as after warmup with the models present
    jobs.hooks = hooks(moderation=moderation)
    scans: list[str] = []
    scan = moderation.moderator.scan

    def counted(prompt, *args, **kwargs):  # type: ignore[no-untyped-def]
        scans.append(prompt)
        return scan(prompt, *args, **kwargs)

    moderation.moderator.scan = counted  # type: ignore[method-assign]
    checked = await moderation.precheck("Pikachu in a red fox costume", "", user_id=6, guild_id=GUILD, channel_id=5,
                                        nsfw_channel=False)
    assert scans == ["Pikachu in a red fox costume"]
    ticket = await jobs.submit(command="imagine", params=jobs.prepare_imagine(
        ImagineOptions(prompt="Pikachu in a red fox costume")), origin=_origin(6, prompt_verdict=checked))
    assert scans == ["Pikachu in a red fox costume"], "the rules ran once for this submission"
    assert ticket.job.notice and "pikachu" in ticket.job.notice.lower(), "the carried reading still decides"
    await jobs.submit(command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a grey wolf")),
                      origin=_origin(6, prompt_verdict=checked))
    assert scans[1:] == ["a grey wolf"]
