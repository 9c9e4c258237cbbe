"""The real bot (`atelier run`) in its own process, pointed at a fake Discord in the bench process.

    python bench/bot_process.py                      # the bot: ATELIER_* settings and the variables below
    python bench/bot_process.py worker --redis URL   # or any other `atelier` command line

Benchmark-only wiring, read from the environment: BENCH_API_BASE and BENCH_GATEWAY, where the
fake's REST API and gateway listen. BENCH_ENGINE=sleep replaces the diffusion pipeline with one
that sleeps BENCH_STEP_SECONDS a step without holding the GIL, as a GPU host's worker does while
the device computes; the default runs the real (tiny) pipeline on this machine's CPU (for
`worker`, the stand-in is passed as its ``--engine``). BENCH_INSTRUMENT names a script run in this
process before the command starts (bench/probe.py serves memory and loop-lag figures).
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

        from inference.media import encode_png, make_grid
        from inference.types import GeneratedImage, GenerationResult

        for step in range(1, request.steps + 1):
            time.sleep(self.step_seconds)
            if on_step is not None:
                on_step(step, request.steps)
        # One picture per seed (a count of 4 is 4 images and their grid), with some noise so the
        # PNGs weigh what real ones do; the parameters travel in each file as the runners write them.
        images, files = [], []
        for seed in request.seeds():
            noise = Image.effect_noise((request.width, request.height), 40 + seed % 40).convert("RGB")
            images.append(noise)
            files.append(GeneratedImage(encode_png(noise, f"{request.prompt}\nSteps: {request.steps}, Seed: {seed}"),
                                        seed, noise.width, noise.height))
        grid = encode_png(make_grid(images), request.prompt) if len(images) > 1 else None
        return GenerationResult(request.job_id, files, grid, self.step_seconds * request.steps, "")


def sleeping_factory(device: str) -> SleepingEngine:
    """`atelier worker --engine __main__:sleeping_factory` (this script is __main__)."""
    return SleepingEngine(float(os.environ.get("BENCH_STEP_SECONDS", "0.2")))


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
    argv = sys.argv[1:] or ["run"]
    if argv[0] == "worker" and os.environ.get("BENCH_ENGINE") == "sleep":
        argv += ["--engine", "__main__:sleeping_factory"]
    patch()
    if os.environ.get("BENCH_INSTRUMENT"):
        import runpy

        runpy.run_path(os.environ["BENCH_INSTRUMENT"])
    if os.environ.get("BENCH_PROFILE"):  # cProfile of the whole process, written at exit
        import cProfile

        cProfile.run("main(argv)", os.environ["BENCH_PROFILE"])
        sys.exit(0)
    sys.exit(main(argv))
