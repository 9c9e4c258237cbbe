"""The GPU host side of remote workers: `atelier worker`, its Redis URL from ATELIER_REDIS_URL (see inference/remote.py).

One slot (a thread and an engine) per device; saq's worker takes jobs from Redis, `_generate` runs
them on a free slot with one task writing progress and heartbeats, and saq's abort stops the engine
between two steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from redis import asyncio as aioredis
from saq import Worker
from saq.job import Job

from inference import hub_progress
from inference.remote import redacted, wait_event
from inference.remote_queue import FUNCTION, AtelierQueue, encode_result
from inference.types import GenerationRequest
from inference.worker import EngineLike

log = logging.getLogger(__name__)

class _Slot:
    """One device: one thread and one engine, so a pipeline never runs in two threads."""

    def __init__(self, device: str, factory: Callable[[str], EngineLike]) -> None:
        self.device = device
        self._factory = factory
        self._engine: EngineLike | None = None
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"atelier-remote-{device}")

    def engine(self) -> EngineLike:
        if self._engine is None:
            self._engine = self._factory(self.device)
        return self._engine


class _Reporter:
    """The one task that writes a running job: progress (at most every `interval`) and the heartbeat."""

    def __init__(self, job: Job, interval: float) -> None:
        self.job = job
        # (step, total, [model, bytes done, bytes in all] while a first use downloads, else None), set from
        # the engine thread; a tuple swap is atomic.
        self.latest: tuple[int, int, list[Any] | None] | None = None
        self.tick = min(interval, job.heartbeat / 3) if job.heartbeat else interval
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    def on_step(self, step: int, total: int) -> None:
        self.latest = (step, total, None)

    def on_loading(self, event: hub_progress.DownloadProgress) -> None:
        self.latest = (0, 0, [event.model, event.done, event.total])

    async def _run(self) -> None:
        sent: tuple[int, int, list[Any] | None] | None = None
        last = time.monotonic()
        while not self._stop.is_set():
            await wait_event(self._stop, self.tick)
            latest, now = self.latest, time.monotonic()
            if self._stop.is_set() or (latest == sent and not (self.job.heartbeat and now - last >= self.tick)):
                continue
            try:
                if latest is not None and latest != sent:
                    await self.job.update(meta={"step": latest[0], "total": latest[1], "loading": latest[2]})
                    sent = latest
                else:
                    await self.job.update()
                last = now
            except Exception as exc:  # Redis hiccup: the next tick tries again
                log.warning("job %s: could not report progress (%s)", self.job.key, exc.__class__.__name__)

    async def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(BaseException):
            await self._task


async def _generate(ctx: dict[str, Any], *, request: dict[str, Any]) -> dict[str, Any]:
    job: Job = ctx["job"]
    slots: asyncio.Queue[_Slot] = ctx["atelier_slots"]
    req = GenerationRequest.from_dict(request)
    loop = asyncio.get_running_loop()
    cancelled = threading.Event()
    slot = await slots.get()
    reporter = _Reporter(job, ctx["atelier_progress_interval"])
    log.info("job %s (attempt %s) running on %s", req.job_id, job.attempts, slot.device,
             extra={"job_id": req.job_id})

    def work() -> Any:
        engine = slot.engine()
        with hub_progress.reporting(reporter.on_loading):  # a first use downloading: the member's message says so
            return (getattr(engine, "generate", None) or engine.run)(req, reporter.on_step, cancelled.is_set)

    future = loop.run_in_executor(slot.thread, work)
    try:
        result = await asyncio.shield(future)
        if hasattr(result, "finish"):  # its files are made off the device's thread, freed for the next job
            slots.put_nowait(slot)
            slot = None
            result = await asyncio.to_thread(result.finish)
    except asyncio.CancelledError:  # saq abort (or shutdown): stop between two steps, then let saq record it
        cancelled.set()
        with contextlib.suppress(BaseException):
            await future
        raise
    except Exception as exc:  # deterministic failures are answers, not reasons to retry elsewhere
        log.info("job %s failed on %s: %r", req.job_id, slot.device, exc, extra={"job_id": req.job_id})
        return {"error": {"message": str(exc), "kinds": [c.__name__ for c in type(exc).__mro__]}}
    finally:
        await reporter.close()
        if slot is not None:
            slots.put_nowait(slot)
    return encode_result(result)


async def run_worker(redis_url: str, devices: list[str], engine_factory: Callable[[str], EngineLike], *,
                     queue_name: str = "atelier", sweep_seconds: int = 10, progress_interval: float = 0.5,
                     stop: asyncio.Event | None = None) -> None:
    """Serve jobs from the queue until ``stop`` is set, or SIGTERM/SIGINT (a running job goes back
    on the queue for another worker)."""
    queue = AtelierQueue(aioredis.from_url(redis_url), name=queue_name, sweep_seconds=sweep_seconds)
    slots: asyncio.Queue[_Slot] = asyncio.Queue()
    for device in devices:
        slots.put_nowait(_Slot(device, engine_factory))

    async def startup(ctx: dict[str, Any]) -> None:
        ctx["atelier_slots"] = slots
        ctx["atelier_progress_interval"] = progress_interval

    worker = Worker(queue, [(FUNCTION, _generate)], concurrency=len(devices), startup=startup,
                    timers={"sweep": sweep_seconds, "worker_info": max(1, min(5, sweep_seconds)), "abort": 1},
                    metadata={"devices": len(devices), "device_names": devices}, dequeue_timeout=1.0)
    log.info("atelier worker on %s serving queue %r at %s", ", ".join(devices), queue_name, redacted(redis_url))
    task = asyncio.create_task(worker.start())
    try:
        if stop is None:
            await task
        else:
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
    finally:
        await worker.stop()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        with contextlib.suppress(Exception):
            await queue.disconnect()
