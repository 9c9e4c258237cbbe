"""A scripted engine for remote-worker tests: sleeps per step, reports progress, honours cancellation.

`atelier worker --engine tests.scale.fake_engine:factory`; the step time comes from
ATELIER_FAKE_STEP_SECONDS. Each result names the process that made it (to prove who finished a job).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled


class FakeEngine:
    def __init__(self, device: str) -> None:
        self.device = device
        self.step_seconds = float(os.environ.get("ATELIER_FAKE_STEP_SECONDS", "0.05"))

    def run(self, request: GenerationRequest, on_step: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None) -> GenerationResult:
        marks = os.environ.get("ATELIER_FAKE_MARK_DIR")
        if marks:  # tells a test which worker process took the job
            with open(os.path.join(marks, f"{request.job_id}.{os.getpid()}"), "w"):
                pass
        if request.prompt == "fail":
            raise ValueError("this prompt always fails")
        if request.prompt == "first use":  # the model downloads before the steps, as a real first use does
            from inference.hub_progress import Tracker

            tracker = Tracker("m", 2_000_000_000)
            for _ in range(4):
                time.sleep(self.step_seconds)
                tracker.add(500_000_000, final=True)
        for step in range(1, request.steps + 1):
            time.sleep(self.step_seconds)
            if on_step is not None:
                on_step(step, request.steps)
            if is_cancelled is not None and is_cancelled():
                raise JobCancelled(request.job_id, step)
        png = b"\x89PNG fake " + str(request.seed).encode() + bytes(range(256)) * 64
        return GenerationResult(request.job_id, [GeneratedImage(png, request.seed, request.width, request.height)],
                                None, self.step_seconds * request.steps, parameters=f"pid={os.getpid()}")


def factory(device: str) -> FakeEngine:
    return FakeEngine(device)
