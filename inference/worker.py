"""One worker per device: claims a job, runs it on its own thread, reports back to the loop.

Each worker has exactly one thread, so one pipeline object is never used by two threads at once
(diffusers schedulers keep per-call state). Progress crosses to the event loop with
`call_soon_threadsafe`; cancellation is a set of job ids the runner checks between steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from inference.types import GenerationRequest, GenerationResult, Progress

if TYPE_CHECKING:
    from inference.pool import JobSource

log = logging.getLogger(__name__)


class EngineLike(Protocol):
    def run(self, request: GenerationRequest, on_step: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None) -> GenerationResult: ...


class Worker:
    def __init__(self, name: str, device: str, engine_factory: Callable[[str], EngineLike], source: JobSource,
                 wake: asyncio.Event, resume: asyncio.Event, cancelled: set[int], *, poll_interval: float) -> None:
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
        self.current: int | None = None

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
        while True:
            await self._resume.wait()
            try:
                request = await self._source.claim(self.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker %s could not claim a job", self.name)
                request = None
            if request is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll)
                continue
            await self._run(request)

    async def _run(self, request: GenerationRequest) -> None:
        loop = asyncio.get_running_loop()
        job_id = request.job_id
        self.current = job_id

        def on_step(step: int, total: int) -> None:
            loop.call_soon_threadsafe(self._report, Progress(job_id, step, total))

        def is_cancelled() -> bool:
            return job_id in self._cancelled

        try:
            result = await loop.run_in_executor(
                self._thread, lambda: self._engine_now().run(request, on_step, is_cancelled)
            )
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # the source turns every failure into a message for the member
            log.info("job %s failed on %s: %r", job_id, self.name, exc)
            await self._source.failed(job_id, exc)
        else:
            await self._source.finished(result)
        finally:
            self.current = None
            self._cancelled.discard(job_id)

    def _report(self, event: Progress) -> None:
        task = asyncio.ensure_future(self._source.progress(event))
        task.add_done_callback(_log_failure)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("progress report failed", exc_info=task.exception())
