"""A worker's device thread only runs pipelines: a job's files are made on another thread while
the device already runs the next job."""

from __future__ import annotations

import asyncio
import threading

from inference.finishing import Finishing
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, Progress
from inference.worker import Worker


class Source:
    def __init__(self, requests: list[GenerationRequest]) -> None:
        self.queue = list(requests)
        self.finished_ids: list[int] = []
        self.failures: list[tuple[int, BaseException]] = []

    async def claim(self, worker: str) -> GenerationRequest | None:
        return self.queue.pop(0) if self.queue else None

    async def progress(self, event: Progress) -> None:
        pass

    async def finished(self, result: GenerationResult) -> None:
        self.finished_ids.append(result.job_id)

    async def failed(self, job_id: int, error: BaseException) -> None:
        self.failures.append((job_id, error))


class TwoPhaseEngine:
    """Records which thread did what; the first job's files wait until the second job ran."""

    def __init__(self) -> None:
        self.device_threads: set[str] = set()
        self.file_threads: set[str] = set()
        self.generated: list[int] = []
        self.second_ran = threading.Event()

    def generate(self, request, on_step=None, is_cancelled=None) -> Finishing:  # type: ignore[no-untyped-def]
        self.device_threads.add(threading.current_thread().name)
        self.generated.append(request.job_id)
        if request.job_id == 2:
            self.second_ran.set()

        def make() -> GenerationResult:
            self.file_threads.add(threading.current_thread().name)
            if request.job_id == 1:
                assert self.second_ran.wait(10), "the device waited for the first job's files"
            if request.job_id == 3:
                raise OSError("disk full")
            return GenerationResult(request.job_id, [GeneratedImage(b"png", request.seed, 8, 8)], None, 0.01)

        return Finishing(request.job_id, make)

    def run(self, request, on_step=None, is_cancelled=None):  # type: ignore[no-untyped-def]
        raise AssertionError("a worker calls generate when the engine has it")


async def test_files_are_made_off_the_device_thread_while_the_next_job_runs() -> None:
    source = Source([GenerationRequest(job_id=i, model="m", prompt="p") for i in (1, 2, 3)])
    engine = TwoPhaseEngine()
    resume = asyncio.Event()
    resume.set()
    worker = Worker("main/cuda:0#0", "cuda:0", lambda device: engine, source, asyncio.Event(), resume, set(), poll_interval=0.05)
    task = asyncio.create_task(worker.run_forever())
    try:
        for _ in range(400):
            if len(source.finished_ids) + len(source.failures) == 3:
                break
            await asyncio.sleep(0.025)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        worker.close()
    assert engine.generated == [1, 2, 3]
    assert sorted(source.finished_ids) == [1, 2]
    assert [(job_id, str(error)) for job_id, error in source.failures] == [(3, "disk full")]
    assert engine.device_threads and engine.file_threads
    assert not engine.device_threads & engine.file_threads
