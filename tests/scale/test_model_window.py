"""The model-aware window of claim_next_job (db.queue.MODEL_WINDOW), on SQLite and PostgreSQL.

Two models, "a" and "b", and a device with room for one: it has "a" loaded and says so (``prefer``)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from db import queue as job_queue
from db.repositories import jobs as jobs_repo
from tests.scale.test_fairness import _add

LOADED = {"a"}


async def _claim(sessions, **claim) -> int:  # type: ignore[no-untyped-def]
    """Claim the next job for a device holding model "a", finish it at once; its id."""
    async with sessions.begin() as s:
        job = await job_queue.claim_next_job(s, worker="main/cuda:0#0", prefer=LOADED, **claim)
        await jobs_repo.complete_job(s, job_id=job.id, outputs=[], run_seconds=1.0)
    return job.id


async def test_a_loaded_model_goes_before_a_slightly_earlier_job_within_the_window(sessions) -> None:  # type: ignore[no-untyped-def]
    earlier = await _add(sessions, 1, model="b")
    # Four times the work of the earlier job (a fair key 3 units larger) and queued after it.
    loaded = await _add(sessions, 2, model="a", count=4)
    async with sessions() as s:  # what the member is told: the fair order, which knows no device
        queued = await jobs_repo.get_job(s, job_id=earlier[0])
        assert await job_queue.queue_position(s, job=queued) == (1, 2)
    assert await _claim(sessions) == loaded[0]
    assert await _claim(sessions) == earlier[0]


async def test_without_the_window_the_earlier_job_goes_first(sessions) -> None:  # type: ignore[no-untyped-def]
    earlier = await _add(sessions, 1, model="b")
    await _add(sessions, 2, model="a", count=4)
    assert await _claim(sessions, window=0) == earlier[0]


@pytest.mark.parametrize(("steps", "within"), [(50, True), (51, False)])
async def test_never_beyond_the_window(sessions, steps: int, within: bool) -> None:  # type: ignore[no-untyped-def]
    """The earlier job's key is 1 unit; the loaded-model job's is steps/20 x 10 images: 25 units is
    exactly 1 + MODEL_WINDOW (still within), 25.5 is beyond."""
    assert job_queue.MODEL_WINDOW == 24.0
    earlier = await _add(sessions, 1, model="b")
    loaded = await _add(sessions, 2, model="a", steps=steps, count=10)
    assert await _claim(sessions) == (loaded[0] if within else earlier[0])


async def test_a_member_on_a_loaded_model_gets_at_most_the_window_ahead(sessions) -> None:  # type: ignore[no-untyped-def]
    """A member with a stream of 1-unit jobs on the loaded model runs until its service is more than
    MODEL_WINDOW beyond the waiting member's: 25 jobs, then the other model's job, whatever remains."""
    waiting = await _add(sessions, 1, model="b")
    stream = await _add(sessions, 2, 30, model="a")
    order = [await _claim(sessions) for _ in range(27)]
    assert order.index(waiting[0]) == int(job_queue.MODEL_WINDOW) + 1
    assert [i for i in order if i != waiting[0]] == stream[:26]


async def test_an_aged_job_is_taken_whatever_its_model(sessions) -> None:  # type: ignore[no-untyped-def]
    old = await _add(sessions, 1, model="b")
    await asyncio.sleep(0.05)
    loaded = await _add(sessions, 2, model="a")
    # Within the window, so the loaded model would go first...
    async with sessions() as s:
        heads = await job_queue._queued_heads(s, None)
        users, guilds, served = await job_queue._standing(s, heads)
        rows = [job_queue._queued_row(h) for h in heads]
    assert job_queue.next_job(rows, users, guilds, served, prefer=LOADED) == loaded[0]
    # ...but the older job has waited its turn for longer than max_wait: ageing comes first.
    assert await _claim(sessions, max_wait=timedelta(milliseconds=20)) == old[0]
    assert await _claim(sessions) == loaded[0]
