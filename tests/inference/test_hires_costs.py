"""Hires fix costs what it runs: credits and the scheduler's GPU work count the second pass."""

from __future__ import annotations

import pytest

from bot.services.quotas import job_credits
from db.queue import gpu_work

PLAIN = {"width": 512, "height": 512, "steps": 25, "count": 1, "guidance": 7.0}


def test_credits_add_the_second_pass_at_the_larger_size() -> None:
    assert job_credits(PLAIN) == 5
    # 25 steps at 512² (5 credits) + int(25 x 0.4) = 10 steps at 1024² (8 credits).
    assert job_credits({**PLAIN, "hires": 2.0, "hires_strength": 0.4}) == 13
    assert job_credits({**PLAIN, "hires": 1.5, "hires_strength": 0.4}) == 5 + 5  # 10 x 2.25 / 5 = 4.5 -> 10 in all
    assert job_credits({**PLAIN, "hires": 2.0, "hires_strength": 0.4, "count": 2}) == 26
    assert job_credits({**PLAIN, "hires": 0.0}) == 5


def test_gpu_work_adds_the_second_pass() -> None:
    plain = gpu_work(PLAIN)
    assert gpu_work({**PLAIN, "hires": 2.0, "hires_strength": 0.4}) == pytest.approx(plain * (25 + 40) / 25)
    assert gpu_work({**PLAIN, "hires": 2.0, "hires_strength": 0.8}) > gpu_work({**PLAIN, "hires": 2.0,
                                                                                "hires_strength": 0.4})
