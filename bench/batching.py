"""Batching throughput: images/s at batch 1, 2, 4, 8 for compatible images, batched vs one by one.

    python bench/batching.py [--steps 4] [--size 512] [--rounds 3] [--threads N]

One tiny SD 1.5 pipeline (random weights, production VAE geometry), one request of N images with
consecutive seeds. `Engine(batch_images=False)` makes N pipeline calls (each image bit-identical to
its seed run alone); `Engine(batch_images=True)` makes one call with N per-image generators. Rounds
alternate the two so machine noise hits both; the best round of each is kept. The tiny UNet is
cheap, so on a CPU this mostly measures per-call overhead (text encoding, scheduler, VAE launch):
the gain on a real GPU with a full-size UNet is in bench/gpu.py's batch-4 figures.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

from inference.engine import RUNNERS, Engine
from inference.models import ModelRegistry
from inference.tiny import make_tiny
from inference.types import GenerationRequest

PROMPT = "a lighthouse at dusk, oil painting"


def timed(engine: Engine, count: int, steps: int, size: int) -> tuple[float, list[bytes]]:
    """One request of `count` images through the engine's runner (what Engine.run times as run_seconds;
    without the PNG encoding and grid, which Engine.run caps at 4 images)."""
    spec = engine.registry.get("tiny-sd15")
    request = GenerationRequest(job_id=1, model=spec.name, prompt=PROMPT, steps=steps, seed=1234,
                                width=size, height=size, count=count, guidance=spec.guidance)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    images = RUNNERS[spec.kind](pipe, request, guidance=spec.guidance, device=engine.device,
                                batch=engine.batch_images)
    return time.perf_counter() - started, [np.asarray(image).tobytes() for image in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry.load(make_tiny(Path(tmp)))
        one_by_one, batched = Engine(registry, "cpu"), Engine(registry, "cpu", batch_images=True)
        batched.cache = one_by_one.cache  # the same pipeline object for both
        timed(one_by_one, 1, args.steps, args.size)  # load and warm up
        print(f"tiny-sd15 {args.size}x{args.size}, {args.steps} steps, cpu, {torch.get_num_threads()} threads, "
              f"best of {args.rounds} rounds")
        print(f"{'batch':>5} {'one by one img/s':>17} {'batched img/s':>14} {'gain':>6} {'same pixels':>12}")
        for count in (int(b) for b in args.batches.split(",")):
            best = {False: float("inf"), True: float("inf")}
            pngs: dict[bool, list[bytes]] = {}
            for _ in range(args.rounds):
                for batch, engine in ((False, one_by_one), (True, batched)):
                    seconds, pngs[batch] = timed(engine, count, args.steps, args.size)
                    best[batch] = min(best[batch], seconds)
            alone, together = count / best[False], count / best[True]
            same = "yes" if pngs[False] == pngs[True] else "no"
            print(f"{count:>5} {alone:>17.2f} {together:>14.2f} {together / alone:>5.2f}x {same:>12}")


if __name__ == "__main__":
    main()
