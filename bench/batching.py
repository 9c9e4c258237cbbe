"""Batching throughput: images/s at batch 1, 2, 4, 8 for compatible jobs, batched vs one by one.

    python bench/batching.py [--model tiny-sd15] [--steps 4] [--size 512] [--rounds 3] [--threads N]

N jobs of different members (different prompts and seeds, same model, size, steps and guidance)
on the engine's real pipeline (tiny random weights, production geometry): `Engine.run` once per
job (what a worker does without batching) against one `Engine.run_batch` call (what it does when
it finds partners, inference/batching.py). Rounds alternate the two so machine noise hits both;
the best round of each is kept. Every batched image is compared with its lone image, bit for bit.
The tiny UNet is cheap, so on a CPU this mostly measures per-call overhead; on a GPU with a
full-size UNet, bench/gpu.py's batch-4 rows are the figure that matters.
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

import torch

from inference.engine import Engine
from inference.models import ModelRegistry
from inference.testing import make_tiny
from inference.types import GenerationRequest, GenerationResult

PROMPTS = ["a lighthouse at dusk, oil painting", "a red fox in fresh snow", "a busy market at noon, watercolor",
           "an astronaut reading in a library", "a castle on a cliff at sunrise", "a bowl of ramen, macro photo",
           "a sailing ship in a storm", "a quiet forest path in autumn"]


def jobs(model: str, n: int, steps: int, size: int, guidance: float) -> list[GenerationRequest]:
    return [GenerationRequest(job_id=i + 1, model=model, prompt=PROMPTS[i % len(PROMPTS)], steps=steps,
                              seed=1000 + 17 * i, width=size, height=size, guidance=guidance) for i in range(n)]


def one_by_one(engine: Engine, requests: list[GenerationRequest]) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    results = [engine.run(r) for r in requests]
    return time.perf_counter() - started, [r.images[0].png for r in results]


def batched(engine: Engine, requests: list[GenerationRequest]) -> tuple[float, list[bytes]]:
    started = time.perf_counter()
    results = engine.run_batch(requests)
    elapsed = time.perf_counter() - started
    out = []
    for result in results:
        if not isinstance(result, GenerationResult):
            raise RuntimeError(f"a batched job failed: {result!r}")
        out.append(result.images[0].png)
    return elapsed, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-sd15")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry.load(make_tiny(Path(tmp)))
        spec = registry.get(args.model)
        engine = Engine(registry, "cpu", batch_max=max(sizes))
        one_by_one(engine, jobs(spec.name, 1, args.steps, args.size, spec.guidance))  # load and warm up
        print(f"{spec.name}, {args.size}x{args.size}, {args.steps} steps, guidance {spec.guidance:g}, "
              f"{torch.get_num_threads()} CPU threads, best of {args.rounds} rounds")
        print("| batch | one by one img/s | batched img/s | gain | same pixels |")
        print("|---|---|---|---|---|")
        for n in sizes:
            requests = jobs(spec.name, n, args.steps, args.size, spec.guidance)
            best_single = best_batch = float("inf")
            same = True
            for _ in range(args.rounds):
                t1, lone = one_by_one(engine, requests)
                t2, together = batched(engine, requests)
                best_single, best_batch = min(best_single, t1), min(best_batch, t2)
                same &= lone == together
            print(f"| {n} | {n / best_single:.2f} | {n / best_batch:.2f} | {best_single / best_batch:.2f}x | "
                  f"{'yes' if same else 'NO'} |")


if __name__ == "__main__":
    main()
