"""The `duration` option of /mod ban and /admin ban-global."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import InvalidOption
from bot.params.bans import ban_until, parse_duration


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("7d", timedelta(days=7)),
    ("1w", timedelta(weeks=1)), ("1d12h", timedelta(days=1, hours=12)), (" 2 H ", timedelta(hours=2)),
])
def test_durations_read_in_any_unit_mix(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", [None, "", "permanent", "Forever"])
def test_no_duration_means_a_ban_with_no_end(text: str | None) -> None:
    assert parse_duration(text) is None and ban_until(text) is None


@pytest.mark.parametrize("text", ["soon", "10", "5y", "1d and 2h"])
def test_unreadable_durations_are_refused_with_examples(text: str) -> None:
    with pytest.raises(InvalidOption, match="30m, 12h, 7d, 1w or permanent"):
        parse_duration(text)


def test_a_ban_ends_that_long_from_now() -> None:
    until = ban_until("1h")
    assert until is not None and abs(until - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(seconds=5)
