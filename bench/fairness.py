"""Fairness: one member with 30 queued jobs, four members with one job each, fair order vs plain FIFO.

    python bench/fairness.py [--duration 0.1] [--heavy 30]

The real JobService and InferencePool run on a SQLite job table with one worker whose engine
sleeps ``--duration`` seconds per job (a scripted stand-in for the GPU, so only the order matters).
Two arrival patterns, each under the fair scheduler (db/queue.py) and plain FIFO:

- staggered: the light members ask while the heavy backlog is being worked through;
- together: the light members ask right after the heavy member queued 30 jobs.

A light member's wait is (start - submit) in job-durations (the measured mean run time). With one
worker, light jobs submitted together wait for each other too, so "delay by heavy" counts only the
heavy member's jobs that started between a light job's submission and its start.
Acceptance (issue 6): every light member's job starts within 2 job-durations under the fair order.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import select, update

from bot.services.jobs import ImagineOptions, JobService, Origin
from db import migrate
from db import queue as job_queue
from db.engine import create_engine, create_sessionmaker
from db.models import Job, JobStatus, utcnow
from inference.models import ModelRegistry
from inference.pool import InferencePool
from inference.types import GenerationRequest, GenerationResult

HEAVY, LIGHT = 1000, (2001, 2002, 2003, 2004)
MODELS_TOML = """
default = "m"
packaged = false
[models.m]
kind = "sd15"
source = "unused"
"""


class SleepingEngine:
    """Takes ``duration`` seconds per job and records when each job started."""

    def __init__(self, duration: float, expect: int) -> None:
        self.duration = duration
        self.expect = expect
        self.started: dict[int, float] = {}
        self.loop = asyncio.get_running_loop()
        self.first_started = asyncio.Event()
        self.all_done = asyncio.Event()

    def run(self, request: GenerationRequest, on_step: Any = None, is_cancelled: Any = None) -> GenerationResult:
        self.started[request.job_id] = time.perf_counter()
        self.loop.call_soon_threadsafe(self.first_started.set)
        time.sleep(self.duration)
        if len(self.started) >= self.expect:
            self.loop.call_soon_threadsafe(self.all_done.set)
        return GenerationResult(request.job_id, [], None, self.duration)


async def fifo_claim(session: Any, *, worker: str, **_: Any) -> Job | None:
    """The scheduler before fair queueing: the oldest queued job (whatever else the claim is told)."""
    job_id = (await session.execute(select(Job.id).where(Job.status == JobStatus.queued).order_by(Job.id).limit(1))).scalar()
    if job_id is None:
        return None
    await session.execute(update(Job).where(Job.id == job_id, Job.status == JobStatus.queued)
                          .values(status=JobStatus.running, started_at=utcnow(), worker=worker, attempts=Job.attempts + 1))
    return await session.get(Job, job_id, populate_existing=True)


async def scenario(tmp: Path, registry: ModelRegistry, *, policy: str, pattern: str, duration: float,
                   heavy_jobs: int) -> dict[str, Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp / f'{policy}-{pattern}.db'}")
    await migrate.upgrade(engine)
    service = JobService(create_sessionmaker(engine), registry, max_queued_per_user=1000, max_queue=10_000)
    fake = SleepingEngine(duration, heavy_jobs + len(LIGHT))
    pool = InferencePool(service, lambda device: fake, ["cpu"], poll_interval=0.05)
    service.pool = pool
    original = job_queue.claim_next_job
    if policy == "fifo":
        job_queue.claim_next_job = fifo_claim  # type: ignore[assignment]
    params = service.prepare_imagine(ImagineOptions(prompt="a cat", seed=1))
    submitted: dict[int, float] = {}
    owner: dict[int, int] = {}

    async def submit(user: int) -> None:
        ticket = await service.submit(command="imagine", params=params, origin=Origin(user_id=user, guild_id=1))
        submitted[ticket.job.id] = time.perf_counter()
        owner[ticket.job.id] = user

    try:
        await pool.start()
        for _ in range(heavy_jobs):
            await submit(HEAVY)
        if pattern == "together":
            for user in LIGHT:
                await submit(user)
        else:
            await fake.first_started.wait()
            first = fake.started[min(fake.started)]
            for user, at in zip(LIGHT, (2.5, 5.5, 9.5, 14.5), strict=True):
                await asyncio.sleep(max(0.0, first + at * duration - time.perf_counter()))
                await submit(user)
        await asyncio.wait_for(fake.all_done.wait(), timeout=60 + 10 * duration * len(submitted))
        await asyncio.sleep(duration)
    finally:
        job_queue.claim_next_job = original  # type: ignore[assignment]
        await pool.stop()
        await engine.dispose()
    starts = sorted(fake.started.values())
    mean = (starts[-1] - starts[0]) / (len(starts) - 1)
    rows = []
    for job_id, user in owner.items():
        if user == HEAVY:
            continue
        wait = (fake.started[job_id] - submitted[job_id]) / mean
        by_heavy = sum(1 for j, u in owner.items() if u == HEAVY and submitted[job_id] <= fake.started[j] < fake.started[job_id])
        rows.append((user, wait, by_heavy))
    return {"mean_duration": mean, "rows": rows}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=0.1, help="seconds per job")
    parser.add_argument("--heavy", type=int, default=30, help="jobs the heavy member queues")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "models.toml").write_text(MODELS_TOML)
        registry = ModelRegistry.load(tmp / "models.toml")
        for pattern in ("staggered", "together"):
            results = {policy: await scenario(tmp, registry, policy=policy, pattern=pattern, duration=args.duration,
                                              heavy_jobs=args.heavy)
                       for policy in ("fair", "fifo")}
            print(f"\n{pattern}: {args.heavy} heavy jobs, 4 light members, 1 worker, "
                  f"job-duration {results['fair']['mean_duration'] * 1000:.0f} ms (fair) / "
                  f"{results['fifo']['mean_duration'] * 1000:.0f} ms (fifo)")
            print(f"{'member':>8} {'fair wait':>10} {'fair by heavy':>14} {'fifo wait':>10} {'fifo by heavy':>14}")
            for fair, fifo in zip(results["fair"]["rows"], results["fifo"]["rows"], strict=True):
                print(f"{fair[0]:>8} {fair[1]:>10.2f} {fair[2]:>14d} {fifo[1]:>10.2f} {fifo[2]:>14d}")
            worst_fair = max(r[1] if pattern == "staggered" else r[2] for r in results["fair"]["rows"])
            worst_fifo = max(r[1] if pattern == "staggered" else r[2] for r in results["fifo"]["rows"])
            label = "wait" if pattern == "staggered" else "delay by heavy"
            print(f"worst light {label} (job-durations): fair {worst_fair:.2f}, fifo {worst_fifo:.2f}")
            ok &= worst_fair <= 2.0
    print(f"\nacceptance (every light job starts within 2 job-durations of the heavy backlog): {'PASS' if ok else 'FAIL'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
