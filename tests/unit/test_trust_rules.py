"""The access rules and the abuse limits, without Discord (their end-to-end tests: tests/e2e/test_trust_*.py)."""

from __future__ import annotations

import pytest

from bot.errors import NotHere, NotYours, SlowDown
from bot.services.access import Place, check_cancel, check_use
from bot.services.rate_limits import Limits
from bot.settings import SettingsError, load_settings
from db.models import Job

A, B, OWNER, OTHER = 1001, 2002, 7, 8


def job(*, guild: int | None = A, nsfw: bool = False) -> Job:
    return Job(id=5, command="imagine", user_id=OWNER, guild_id=guild, model="m", prompt="p", seed=1,
               params={"nsfw_channel": nsfw})


def test_use_own_jobs_anywhere_allowed_and_others_only_in_their_server() -> None:
    check_use(job(), Place(OWNER, B))
    check_use(job(guild=None), Place(OWNER, B))
    check_use(job(), Place(OTHER, A))
    for place in (Place(OTHER, B), Place(OTHER, None), Place(OTHER, B, manages_guild=True)):
        with pytest.raises(NotYours):
            check_use(job(), place)
    with pytest.raises(NotYours):  # someone's DM job is in no server at all
        check_use(job(guild=None), Place(OTHER, None))


def test_age_restricted_jobs_stay_in_age_restricted_channels() -> None:
    for who in (OWNER, OTHER):
        with pytest.raises(NotHere):
            check_use(job(nsfw=True), Place(who, A))
        check_use(job(nsfw=True), Place(who, A, nsfw_channel=True))


def test_cancel_own_or_as_moderator_of_the_jobs_server() -> None:
    check_cancel(job(), Place(OWNER, B))
    check_cancel(job(), Place(OTHER, A, manages_guild=True))
    for place in (Place(OTHER, A), Place(OTHER, B, manages_guild=True), Place(OTHER, None, manages_guild=True)):
        with pytest.raises(NotYours):
            check_cancel(job(), place)
    with pytest.raises(NotYours):
        check_cancel(job(guild=None), Place(OTHER, None, manages_guild=True))


def test_cooldown_per_minute_and_notices() -> None:
    now = [0.0]
    limits = Limits(cooldown=2.0, per_minute={"show": 2}, clock=lambda: now[0])
    limits.cooldown(OWNER)
    limits.cooldown(OTHER)  # per member
    with pytest.raises(SlowDown, match=r"try again in 1\.5 s"):
        now[0] = 0.5
        limits.cooldown(OWNER)
    now[0] = 2.0
    limits.cooldown(OWNER)
    limits.take("show", OWNER)
    limits.take("show", OWNER)
    limits.take("export", OWNER)  # no limit set for it
    with pytest.raises(SlowDown, match="2 times a minute"):
        limits.take("show", OWNER)
    now[0] = 62.0
    limits.take("show", OWNER)
    assert limits.may_notify(OWNER) and not limits.may_notify(OWNER) and limits.may_notify(OTHER)
    now[0] = 123.0
    assert limits.may_notify(OWNER)
    Limits(cooldown=0).cooldown(OWNER)
    Limits(cooldown=0).cooldown(OWNER)


def test_trust_settings() -> None:
    settings = load_settings()
    assert (settings.dm_allowed, settings.cooldown, settings.max_queued_per_member, settings.max_queue) == (
        False, 2.0, 10, 500)
    assert load_settings(dm="Allowed").dm_allowed
    with pytest.raises(SettingsError, match=r"ATELIER_DM: .*off or allowed"):
        load_settings(dm="sometimes")
    with pytest.raises(SettingsError, match="ATELIER_COOLDOWN"):
        load_settings(cooldown=-1)
