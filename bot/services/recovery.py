"""Recovery: what a stop, a crash or a failed write left behind is finished or run again.

At start-up interrupted jobs go back to the queue once and results that never reached Discord are
posted. While running, a periodic sweep marks this process's jobs alive, retries what failed on
the way, and re-queues jobs whose process stopped giving signs of life (several bot processes may
share one database).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bot.services.hooks import notify
from bot.services.live import MAX_RETRIES
from bot.services.pool_events import PoolEvents
from db.models import Job, JobStatus
from db.repositories import jobs as jobs_repo

log = logging.getLogger(__name__)

# Every HEARTBEAT_SECONDS a process marks its running jobs alive; a running job of another process
# with no sign of life for STALE_AFTER is taken to be orphaned (that process died) and re-queued.
HEARTBEAT_SECONDS = 20.0
STALE_AFTER = timedelta(seconds=90)


class Recovery(PoolEvents):
    """Retries and re-queues on top of the pool's events: what they could not finish, this does."""

    def _mine(self, job: Job) -> bool:
        """Claimed by this process: every worker is named "<process>/<device>#n" (inference/pool.py)
        or "<process>/remote" (a remote pool, bot/client.py). A running job always names its
        claimer; a finished one with no worker (its failure was recorded after another process had
        re-queued it) is no process's, so no sweep retries its delivery: start-up recovery posts it."""
        return job.worker is not None and job.worker.startswith(f"{self.owner}/")

    def _fresh(self, job: Job) -> bool:
        return jobs_repo.last_sign_of_life(job) > datetime.now(UTC) - STALE_AFTER

    async def recover(self) -> tuple[list[int], list[int]]:
        """At start-up: re-queue interrupted jobs once, deliver what finished but never reached Discord.

        Interrupted means run by this process before it stopped, or by another whose heartbeat
        lapsed; jobs other live processes are running (several bot processes on one database) are
        left to them."""
        requeued, failed = await self._requeue(lambda job: not self._mine(job) and self._fresh(job))
        async with self.reads() as session:
            pending = await jobs_repo.undelivered(session)
        if pending:
            log.info("recovery: delivering %s", [j.id for j in pending])
        for job in pending:
            if job.status == JobStatus.completed:
                self._track(self.deliver(job.id))
            else:
                self._track(self._deliver_failure(job, job.error or "The job failed."))
        return requeued, failed

    async def sweep(self) -> tuple[list[int], list[int]]:
        """Periodically: say this process's jobs are alive; retry what failed on the way (recording
        a job's end, a delivery); re-queue this process's running jobs that nothing here runs any
        more (the recording of their end was given up) and other processes' jobs whose heartbeat
        lapsed (a process that died and did not come back)."""
        async with self.sessions.begin() as session:
            await jobs_repo.heartbeat(session, owner=self.owner)
        await self._retry_outcomes()
        requeued, failed = await self._requeue(
            lambda job: self._held(job) if self._mine(job) else self._fresh(job))
        for job_id in failed:
            dead = await self.get_job(job_id)
            if dead is not None and not dead.delivered:
                self._track(self._deliver_failure(dead, dead.error or "The job failed."))
        await self._retry_deliveries()
        return requeued, failed

    def _held(self, job: Job) -> bool:
        """This process still has its running job: a device runs it, its end waits to be recorded,
        or it was claimed so recently that the claim may not be noted yet."""
        if job.id in self._live:
            return True
        started = job.started_at or job.created_at
        return jobs_repo.aware(started) > datetime.now(UTC) - timedelta(seconds=self.sweep_seconds)

    async def _retry_outcomes(self) -> None:
        for job_id, live in list(self._live.items()):
            outcome, live.outcome = live.outcome, None
            if outcome is None:
                continue
            live.tries += 1
            if live.tries > MAX_RETRIES:
                log.error("gave up recording the end of job %s; it goes back to the queue", job_id)
                self._forget(job_id)
            elif isinstance(outcome, BaseException):
                await self.failed(job_id, outcome)
            else:
                await self.finished(outcome)

    async def _retry_deliveries(self) -> None:
        """Results and failure notices that did not reach Discord (it refused or was unreachable)
        are posted again, once they are a sweep old (a delivery may still be on its way)."""
        if self.delivery is None or not self._redeliver:
            return
        cutoff = datetime.now(UTC) - timedelta(seconds=self.sweep_seconds)
        async with self.reads() as session:
            pending = await jobs_repo.undelivered(session)
        self._redeliver = False
        for job in pending:
            if (not self._mine(job) or job.finished_at is None
                    or self._delivery_tries.get(job.id, 0) >= MAX_RETRIES):  # type: ignore[arg-type]
                continue
            if job.id in self._delivering or jobs_repo.aware(job.finished_at) > cutoff:
                self._redeliver = True  # look again at the next sweep
                continue
            if job.status == JobStatus.completed:
                self._track(self.deliver(job.id))  # type: ignore[arg-type]
            else:
                self._track(self._deliver_failure(job, job.error or "The job failed."))

    async def heartbeat_forever(self, interval: float | None = None) -> None:
        interval = self.sweep_seconds if interval is None else interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job heartbeat failed")

    async def _requeue(self, alive: Callable[[Job], bool]) -> tuple[list[int], list[int]]:
        async with self.sessions.begin() as session:
            requeued, failed = await jobs_repo.recover_interrupted(session, alive=alive)
            for job_id in failed:
                dead = await jobs_repo.get_job(session, job_id=job_id)
                if dead is not None:
                    await notify(self.hooks.on_ended, session, dead)
        if requeued or failed:
            log.info("recovery: requeued %s, failed %s", requeued, failed)
        if requeued and self.pool is not None:
            self.pool.wake()
        return requeued, failed

