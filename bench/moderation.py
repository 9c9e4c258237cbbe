"""Moderation throughput: prompts/s for the rule layers (English and multilingual prompts) and ms/prompt
with the semantic layer, one thread.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/moderation.py [--n 20000] [--semantic-n 200] [--profile]``.
``--profile`` prints cProfile's top functions for the all-layers pass.
Uses the labelled set's prompts (cycled); the normalisation cache is cleared between passes so
repeated prompts don't flatter the figure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

# This file is named like the package: keep bench/ off the import path, put the repo root on it.
_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

log = logging.getLogger(__name__)
DATA = _ROOT / "tests" / "data" / "moderation_prompts.jsonl"
MULTILINGUAL = _ROOT / "tests" / "data" / "moderation_multilingual.jsonl"


def _rules_pass(moderator: object, prompts: list[str], n: int, label: str, *, learned: bool = False) -> None:
    from moderation.normalize import normalize

    # Unique variants so the lru cache on normalize() never hits.
    work = [f"{prompts[i % len(prompts)]}, take {i}" for i in range(n)]
    normalize.cache_clear()
    start, cpu_start = time.perf_counter(), time.process_time()
    for p in work:
        moderator.check(p, semantic=learned)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    # CPU time is the figure to compare on a shared machine: wall time counts other processes' turns.
    print(f"{'rules + learned' if learned else 'rules layers'} ({label}): {n / elapsed:,.0f} prompts/s on one thread ({n} prompts, {elapsed:.2f} s wall); "
          f"{n / cpu:,.0f} prompts per CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--semantic-n", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="cProfile the all-layers pass")
    args = parser.parse_args()

    from moderation import Moderator

    prompts = [json.loads(line)["prompt"] for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    other = [json.loads(line)["prompt"] for line in MULTILINGUAL.read_text("utf-8").splitlines() if line.strip()]
    rules_only = Moderator(semantic=False)
    rules_only.check("warm up", semantic=False)
    rules_only.check("een groot huis", semantic=False)  # loads the language identifier
    _rules_pass(rules_only, prompts, args.n, "English labelled set")
    _rules_pass(rules_only, other, args.n, "multilingual set, 16 languages/scripts")
    # The learned layer without the MiniLM model: one word-level score per word no list knows.
    with_learned = Moderator(semantic=False, learned=True)
    with_learned.check("warm up")
    _rules_pass(with_learned, other, args.n, "multilingual set", learned=True)

    try:
        import torch  # bench only: moderation itself never imports torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    full = Moderator()
    if not full.warmup():
        print("semantic layer unavailable:", full.semantic.error if full.semantic else "disabled")
        return
    mixed = prompts + other
    sample = [f"{mixed[(i * 7) % len(mixed)]}, v{i}" for i in range(args.semantic_n)]
    concepts = "on" if getattr(full, "concepts", True) else "off: the learned prompt model ships"
    times, cpu = [], []
    for p in sample:
        t, c = time.perf_counter(), time.thread_time()
        full.check(p)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    times.sort()
    cpu.sort()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for p in sample:
            full.check(p + " again")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)
    p95 = times[int(0.95 * (len(times) - 1))]
    print(f"all layers (both sets): median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms per prompt wall; "
          f"CPU median {statistics.median(cpu):.2f} ms, p95 {cpu[int(0.95 * (len(cpu) - 1))]:.2f} ms "
          f"({len(times)} prompts, torch threads = 1; MiniLM concepts "
          f"{concepts})")


if __name__ == "__main__":
    main()
