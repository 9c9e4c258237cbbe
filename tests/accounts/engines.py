"""A scripted engine for end-to-end tests: real steps, real cancellation checks, no model.

It behaves like the runners as the pool sees them: calls `on_step` after each step, checks
`is_cancelled` between steps and raises JobCancelled, and returns PNGs of the requested size.
`step_seconds` makes jobs slow enough to cancel or kill mid-run; `reached` records the last step
each job completed, so a test can assert how far a canceled job got.
"""

from __future__ import annotations

import io
import threading
import time

from PIL import Image

from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled


def png(width: int, height: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), ((seed * 37) % 256, (seed * 91) % 256, 128)).save(buf, "PNG")
    return buf.getvalue()


class ScriptedEngine:
    def __init__(self, step_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds
        self.reached: dict[int, int] = {}
        self.runs: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def factory(self, device: str) -> ScriptedEngine:
        return self

    def run(self, request: GenerationRequest, on_step=None, is_cancelled=None) -> GenerationResult:  # type: ignore[no-untyped-def]
        self.runs.append(request.job_id)
        started = time.monotonic()
        for step in range(request.steps):
            if is_cancelled is not None and is_cancelled():
                raise JobCancelled(request.job_id, step)
            self.gate.wait(30)
            if self.step_seconds:
                time.sleep(self.step_seconds)
            self.reached[request.job_id] = step + 1
            if on_step is not None:
                on_step(step + 1, request.steps)
        images = [GeneratedImage(png(request.width, request.height, s), s, request.width, request.height)
                  for s in request.seeds()]
        grid = png(request.width * 2, request.height, request.seed) if request.count > 1 else None
        return GenerationResult(request.job_id, images, grid, time.monotonic() - started)
