"""Acknowledgements come first (bot/acks.py), except when the devices have nothing to do."""

from __future__ import annotations

import asyncio

from bot.acks import AckGate
from bot.jobs import ImagineOptions, Origin
from tests.accounts.helpers import service


class Response:
    def __init__(self) -> None:
        self.done = False

    def is_done(self) -> bool:
        return self.done


class Interaction:
    def __init__(self, id: int) -> None:
        self.id = id
        self.response = Response()


class Pool:
    def __init__(self, busy: int) -> None:
        self.busy, self.size, self.woken = busy, 1, 0

    def wake(self) -> None:
        self.woken += 1

    def cancel(self, job_id: int) -> None:
        pass


async def _submit(sessions, tmp_path, busy: int) -> tuple[asyncio.Task, Interaction, Pool]:  # type: ignore[no-untyped-def]
    jobs = service(sessions, tmp_path)
    jobs.acks = AckGate(max_wait=5.0, poll=0.005)
    jobs.pool = pool = Pool(busy)
    waiting = Interaction(1)
    jobs.acks.received(waiting)  # another member's command, not yet acknowledged
    task = asyncio.ensure_future(jobs.submit(
        command="imagine", params=jobs.prepare_imagine(ImagineOptions(prompt="a red fox")),
        origin=Origin(user_id=7, user_name="someone", guild_id=1, channel_id=5)))
    return task, waiting, pool


async def test_a_busy_pool_stores_the_job_after_pending_acknowledgements(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    task, waiting, pool = await _submit(sessions, tmp_path, busy=1)
    await asyncio.sleep(0.2)
    assert not task.done() and pool.woken == 0
    waiting.response.done = True
    ticket = await asyncio.wait_for(task, 5)
    assert ticket.job.id is not None and pool.woken == 1


async def test_an_idle_pool_gets_its_job_without_waiting(sessions, tmp_path) -> None:  # type: ignore[no-untyped-def]
    task, waiting, pool = await _submit(sessions, tmp_path, busy=0)
    ticket = await asyncio.wait_for(task, 2)  # the other command is still unanswered
    assert ticket.job.id is not None and pool.woken == 1
    assert not waiting.response.done
