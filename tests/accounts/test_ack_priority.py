"""Acknowledgements come first (bot/services/acks.py), except when the devices have nothing to do."""

from __future__ import annotations

import asyncio

from bot.services.acks import AckGate
from bot.services.jobs import ImagineOptions, Origin
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


class Counted(Response):
    asked = 0

    def is_done(self) -> bool:
        Counted.asked += 1
        return self.done


async def test_a_burst_of_waiters_looks_at_the_pending_interactions_once_a_poll() -> None:
    gate = AckGate(max_wait=5.0, poll=0.005)
    pending = [Interaction(n) for n in range(200)]
    for interaction in pending:
        interaction.response = Counted()
        gate.received(interaction)
    Counted.asked = 0
    waiters = [asyncio.ensure_future(gate.quiet()) for _ in range(200)]  # 200 submissions after their acks
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    for interaction in pending:
        interaction.response.done = True
    await asyncio.wait_for(asyncio.gather(*waiters), 1.0)
    polls = (asyncio.get_running_loop().time() - started) / gate.poll + 2
    assert Counted.asked <= 200 * polls  # not 200 waiters x 200 interactions each poll
    assert gate.unanswered() == 0


async def test_a_waiter_stops_waiting_after_max_wait() -> None:
    gate = AckGate(max_wait=0.05, poll=0.005)
    gate.received(Interaction(1))  # never answered
    await asyncio.wait_for(gate.quiet(), 2.0)  # returns on its own
    assert gate.unanswered() == 1
