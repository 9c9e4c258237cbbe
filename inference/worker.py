"""One worker per device: claims a job, runs it on its own thread, reports back to the loop.

Each worker has exactly one thread, so one pipeline object is never used by two threads at once
(diffusers schedulers keep per-call state). Progress crosses to the event loop with
`call_soon_threadsafe`; cancellation is a set of job ids the runner checks between steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from inference import hub_progress
from inference.types import GenerationRequest, GenerationResult, JobTimedOut, Progress, run_limit

if TYPE_CHECKING:
    from inference.pool import JobSource

log = logging.getLogger(__name__)


class EngineLike(Protocol):
    def run(self, request: GenerationRequest, on_step: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None) -> GenerationResult: ...


class Batching:
    """How a worker gathers compatible jobs into one pipeline call (see inference/batching.py).

    ``window``: after claiming a job while submissions are arriving (one came in the last
    ``window`` seconds), wait this long once for partners to be queued. With no recent
    submission nobody waits: a quiet bot never pays the window."""

    def __init__(self, *, window: float = 0.05) -> None:
        self.window = window
        self.last_submission = float("-inf")


class Worker:
    def __init__(self, name: str, device: str, engine_factory: Callable[[str], EngineLike], source: JobSource,
                 wake: asyncio.Event, resume: asyncio.Event, cancelled: set[int], *, poll_interval: float,
                 batching: Batching | None = None, run_timeout: float | None = None) -> None:
        self.name = name
        self.device = device
        self._factory = engine_factory
        self._engine: EngineLike | None = None
        self._source = source
        self._wake = wake
        self._resume = resume
        self._cancelled = cancelled
        self._poll = poll_interval
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"atelier-{device}")
        # Where a job's files are made (engine.generate's finish()): off the device's thread.
        self._finisher = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"atelier-{device}-files")
        self.batching = batching
        # The watchdog's limit for one pipeline call (None: by task, see inference.types.run_limit).
        self.run_timeout = run_timeout
        self.abandoned = 0  # pipeline calls given up on by the watchdog
        self.batches = 0  # pipeline calls that carried more than one job
        self.settling: set[asyncio.Future[None]] = set()  # outcomes still being reported
        self._running: list[int] = []  # jobs on the device now, the first one leading
        self._ahead: asyncio.Future[list[GenerationRequest] | None] | None = None  # next claim, started early

    @property
    def current(self) -> int | None:
        """The job on the device now (the first of a batch), or None when idle."""
        return self._running[0] if self._running else None

    @property
    def engine(self) -> EngineLike | None:
        """The device's engine once built (it is built on the worker thread by the first job or warmup)."""
        return self._engine

    def _engine_now(self) -> EngineLike:
        # Built on the worker thread: the first build imports torch (seconds), never on the loop.
        if self._engine is None:
            self._engine = self._factory(self.device)
        return self._engine

    async def warmup(self, models: list[str]) -> None:
        loop = asyncio.get_running_loop()

        def _load() -> None:
            engine = self._engine_now()
            preload = getattr(engine, "preload", None)
            for model in models:
                if preload is not None:
                    preload(model)

        await loop.run_in_executor(self._thread, _load)

    async def run_forever(self) -> None:
        try:
            while True:
                if self._ahead is not None and not self._resume.is_set():
                    await self._release_ahead()  # paused: jobs claimed ahead wait in the queue like the rest
                await self._resume.wait()
                claimed = await self._take_ahead() if self._ahead is not None else None
                if claimed is None and self._resume.is_set():  # also when the early claim found nothing
                    claimed = await self._claim()
                if claimed is None and await self._warm_up_while_idle():
                    continue
                if claimed is None:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self._poll)
                    continue
                if len(claimed) > 1:
                    await self._run_batch(claimed)
                else:
                    await self._run(claimed[0])
        finally:
            if self._ahead is not None:  # stopping: what was claimed ahead goes back to the queue
                await self._release_ahead()

    async def _warm_up_while_idle(self) -> bool:
        """With no job queued, compile one more of the engine's planned shapes (inference/compile.py)
        on the device thread: start-up never waits for it, and a job waits at most for one shape."""
        step = getattr(self._engine, "warm_up_step", None)
        if step is None or not getattr(self._engine, "warm_up", None):
            return False
        await asyncio.get_running_loop().run_in_executor(self._thread, step)
        return True

    async def _claim(self) -> list[GenerationRequest] | None:
        """The next job and its batch partners, claimed; None when nothing is queued."""
        try:
            request = await self._source.claim(self.name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker %s could not claim a job", self.name)
            return None
        if request is None:
            return None
        return [request, *await self._partners(request)]

    def _look_ahead(self, event: Progress) -> None:
        """The running job reported its last denoising step: claim the next job now, so the device
        starts it the moment decoding and encoding are done instead of waiting for a round trip to
        the database (the choice is made within a step of the old time, so the order stays fair)."""
        if (self._ahead is None and event.loading is None and event.step >= event.total
                and event.job_id in self._running and self._resume.is_set()):
            self._ahead = asyncio.ensure_future(self._claim())

    async def _take_ahead(self) -> list[GenerationRequest] | None:
        task, self._ahead = self._ahead, None
        assert task is not None
        return await task

    async def _release_ahead(self) -> None:
        task, self._ahead = self._ahead, None
        assert task is not None
        try:
            claimed = await asyncio.shield(task)  # a claim half done would leave a job marked running
        except BaseException:
            return
        if claimed:
            await self._give_back(claimed)

    async def _give_back(self, claimed: list[GenerationRequest]) -> None:
        release = getattr(self._source, "release", None)
        if release is None:
            return
        try:
            await release(self.name, [r.job_id for r in claimed])
        except Exception:  # the start-up recovery re-queues them
            log.exception("worker %s could not put jobs %s back", self.name, [r.job_id for r in claimed])

    async def _partners(self, request: GenerationRequest) -> list[GenerationRequest]:
        """Other members' next jobs that can share this job's pipeline call, claimed; [] when none."""
        engine = self._engine
        claim = getattr(self._source, "claim_partners", None)
        room = getattr(engine, "batch_max", 1) - request.count
        if (self.batching is None or claim is None or room < 1 or request.batch_key() is None
                or not hasattr(engine, "run_batch")):
            return []
        try:
            partners = await claim(self.name, request, room)
            if not partners and self.batching.window > 0 and \
                    time.monotonic() - self.batching.last_submission < self.batching.window:
                await asyncio.sleep(self.batching.window)
                partners = await claim(self.name, request, room)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("worker %s could not look for batch partners of job %s", self.name, request.job_id)
            return []
        return list(partners)

    async def _run_batch(self, requests: list[GenerationRequest]) -> None:
        loop = asyncio.get_running_loop()
        self.batches += 1
        log.info("worker %s runs jobs %s as one batch", self.name, [r.job_id for r in requests])

        def on_step(job_id: int, step: int, total: int) -> None:
            loop.call_soon_threadsafe(self._report, Progress(job_id, step, total))

        def work() -> list[object]:
            engine = self._engine_now()
            run = getattr(engine, "generate_batch", None) or engine.run_batch  # type: ignore[attr-defined]
            return run(requests, on_step, lambda job_id: job_id in self._cancelled)

        await self._execute(requests, work)

    async def _run(self, request: GenerationRequest) -> None:
        loop = asyncio.get_running_loop()
        job_id = request.job_id

        def on_step(step: int, total: int) -> None:
            loop.call_soon_threadsafe(self._report, Progress(job_id, step, total))

        def is_cancelled() -> bool:
            return job_id in self._cancelled

        def work() -> list[object]:
            engine = self._engine_now()
            return [(getattr(engine, "generate", None) or engine.run)(request, on_step, is_cancelled)]

        await self._execute([request], work)

    async def _execute(self, requests: list[GenerationRequest], work: Callable[[], list[object]]) -> None:
        """Run ``work`` on the device thread and report each job's result or failure; a result still
        to be finished (its files made) is finished on another thread while the device goes on."""
        ids = [r.job_id for r in requests]
        self._running = ids
        limit = run_limit(requests, self.run_timeout)
        loop = asyncio.get_running_loop()

        def loading(event: hub_progress.DownloadProgress) -> None:  # a first use downloading: the jobs' messages say so
            for job_id in ids:
                loop.call_soon_threadsafe(self._report, Progress(job_id, 0, 0, event.model, event.done, event.total))

        def reported() -> list[GenerationResult | BaseException]:
            with hub_progress.reporting(loading):
                return work()

        future = loop.run_in_executor(self._thread, reported)
        abandoned = False
        try:
            outcomes = await asyncio.wait_for(asyncio.shield(future), limit)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            outcomes = [JobTimedOut(job_id, limit) for job_id in ids]
            self._abandon(ids, limit)
            abandoned = True
            future.add_done_callback(_ended_late)
        except BaseException as exc:  # the source turns every failure into a message for the member
            outcomes = [exc] * len(requests)
        try:
            for job_id, outcome in zip(ids, outcomes, strict=True):
                if isinstance(outcome, BaseException):
                    log.info("job %s failed on %s: %r", job_id, self.name, outcome)
                    self._settle(self._source.failed(job_id, outcome))
                else:
                    self._settle(self._finish(job_id, outcome))
        finally:
            self._running = []
            if not abandoned:  # an abandoned call keeps its cancel flags: it may still reach a step
                for job_id in ids:
                    self._cancelled.discard(job_id)

    def _abandon(self, ids: list[int], limit: float) -> None:
        """The watchdog: a pipeline call that has not returned within ``limit`` is left behind.

        Its jobs fail (the member is told and can try again), a cancel is requested in case it is
        only slow (it stops at its next step), and the device gets a new thread and a new engine:
        the old engine's pipelines may still be in use by the stuck thread, and one pipeline is
        never used by two threads. The stuck thread ends when its call does."""
        log.error("worker %s: jobs %s ran for more than %g s; abandoning the call and starting afresh",
                  self.name, ids, limit)
        self._cancelled.update(ids)
        stuck, self._thread = self._thread, ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"atelier-{self.device}")
        stuck.shutdown(wait=False, cancel_futures=True)
        self._engine = None
        self.abandoned += 1

    async def _finish(self, job_id: int, outcome: object) -> None:
        finish = getattr(outcome, "finish", None)
        if finish is not None:
            try:
                outcome = await asyncio.get_running_loop().run_in_executor(self._finisher, finish)
            except Exception as exc:
                log.info("job %s failed making its files on %s: %r", job_id, self.name, exc)
                await self._source.failed(job_id, exc)
                return
        await self._source.finished(outcome)  # type: ignore[arg-type]

    def _settle(self, report: Awaitable[None]) -> None:
        """Report an outcome in the background: the device starts its next job meanwhile instead of
        idling through the result's database write (pool.stop waits for these)."""
        task = asyncio.ensure_future(report)
        self.settling.add(task)
        task.add_done_callback(self.settling.discard)
        task.add_done_callback(_log_failure)

    def _report(self, event: Progress) -> None:
        self._look_ahead(event)
        task = asyncio.ensure_future(self._source.progress(event))
        task.add_done_callback(_log_failure)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        self._finisher.shutdown(wait=False, cancel_futures=True)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("reporting to the job source failed", exc_info=task.exception())


def _ended_late(future: asyncio.Future[object]) -> None:
    """An abandoned pipeline call ended after all: its outcome was already reported as a timeout."""
    if not future.cancelled() and future.exception() is not None:
        log.info("an abandoned pipeline call ended with %r", future.exception())
