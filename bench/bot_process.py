"""The real bot (`atelier run`) in its own process, pointed at a fake Discord in the bench process.

    python bench/bot_process.py   # reads ATELIER_* settings and the two variables below

Benchmark-only wiring, read from the environment: BENCH_API_BASE and BENCH_GATEWAY, where the
fake's REST API and gateway listen. BENCH_ENGINE=sleep replaces the diffusion pipeline with one
that sleeps BENCH_STEP_SECONDS a step without holding the GIL, as a GPU host's worker does while
the device computes; the default runs the real (tiny) pipeline on this machine's CPU.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import discord
import yarl

import bot.client
from bot.__main__ import main


class SleepingEngine:
    """Stands in for a GPU: each denoising step is time.sleep (the GIL is free meanwhile)."""

    def __init__(self, step_seconds: float) -> None:
        self.step_seconds = step_seconds

    def run(self, request, on_step=None, is_cancelled=None):  # type: ignore[no-untyped-def]
        from PIL import Image

        from inference.media import encode_png
        from inference.types import GeneratedImage, GenerationResult

        for step in range(1, request.steps + 1):
            time.sleep(self.step_seconds)
            if on_step is not None:
                on_step(step, request.steps)
        image = Image.new("RGB", (request.width, request.height), (90, 120, 160))
        png = encode_png(image, f"{request.prompt}\nSteps: {request.steps}, Seed: {request.seed}")
        return GenerationResult(request.job_id, [GeneratedImage(png, request.seed, image.width, image.height)],
                                None, self.step_seconds * request.steps, "")


def patch() -> None:
    discord.http.Route.BASE = os.environ["BENCH_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["BENCH_GATEWAY"])
    if os.environ.get("BENCH_ENGINE") == "sleep":
        engine = SleepingEngine(float(os.environ.get("BENCH_STEP_SECONDS", "0.2")))
        bot.client.engine_factory = lambda settings, registry: (lambda device: engine)  # type: ignore[assignment]


if __name__ == "__main__":
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID` prints every stack
    if os.environ.get("BENCH_TASK_DUMP"):  # `kill -USR2 PID` prints every asyncio task's stack
        import asyncio

        def dump(*_: object) -> None:
            for task in asyncio.all_tasks(asyncio.get_event_loop()):
                task.print_stack(file=sys.stderr)

        signal.signal(signal.SIGUSR2, dump)
    patch()
    if os.environ.get("BENCH_INSTRUMENT"):
        import runpy

        runpy.run_path(os.environ["BENCH_INSTRUMENT"])
    if os.environ.get("BENCH_PROFILE"):  # cProfile of the whole process, written at exit
        import cProfile

        cProfile.run('main(["run"])', os.environ["BENCH_PROFILE"])
        sys.exit(0)
    sys.exit(main(["run"]))
