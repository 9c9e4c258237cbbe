"""A busy GPU server simulated on the CPU: which order keeps the GPU generating instead of loading.

    .venv/bin/python bench/serve.py [--members 1000] [--hours 2] [--load 0.95] [--window 24] [--seed 1]

One GPU in virtual time, an engine stub whose run and load times and model sizes follow published
GPU figures (bench/README.md): SDXL and Animagine 2.5 s an image (30 steps, 1024 px, H100), SD 1.5
0.7 s; loads of 20 s (SDXL-sized) and 8 s; 6.9 and 2.1 GB of weights against a VRAM budget that
holds any two of the three models, not all three. A thousand members in
20 guilds, a few very active and most occasional (Zipf), each asking in sessions of 1-5 jobs, most
of them on their favourite model, counts 1, 2 or 4. Arrivals offer ``--load`` of what the GPU can do
without reloads, for ``--hours``; then the queue drains.

Four orders of the same arrivals:
- FIFO: the oldest queued job; the least recently used model goes when one must.
- fair: the scheduler before the model-aware window (db/queue.py with ``window`` 0: fair order over
  guilds then members, ageing, a loaded model only breaking exact ties); least recently used eviction.
- model-aware LRU: today's claim order (db.queue.next_job with ``--window``, default db.queue.MODEL_WINDOW):
  among the heads whose fair key is within the window of the first's, the first on a loaded model
  goes; ageing still comes first. Least recently used eviction.
- model-aware: today's claim and cache: the same order, and when a model must go, the loaded model the fewest queued jobs
  want goes (then the least recently used), as the real model cache does with the queue's demand.

Printed per order: GPU busy share (generating or loading, of the span), images per GPU-minute
against the ideal (all GPU time spent generating), reloads, p50/p95 wait. Then the fairness check
of bench/fairness.py on this scheduler: a member with 30 SDXL jobs, four light members arriving while
it runs, asking for the other models; each light job must start within 2 job-durations of heavy jobs.
Then the window's worst cases: the same pattern with the heavy member in the light members' guild,
and with small heavy jobs (SD 1.5), in heavy jobs started ahead of a light job and their GPU time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db.queue import MAX_WAIT, MODEL_WINDOW, Queued, gpu_work, guild_key, next_job


@dataclass(frozen=True)
class Model:
    name: str
    weights_gb: float
    load_s: float
    image_s: float
    params: dict


MODELS = {
    "sdxl": Model("sdxl", 6.9, 20.0, 2.5, {"steps": 30, "width": 1024, "height": 1024, "guidance": 7.0}),
    "animagine": Model("animagine", 6.9, 20.0, 2.5, {"steps": 28, "width": 1024, "height": 1024, "guidance": 7.0}),
    "sd15": Model("sd15", 2.1, 8.0, 0.7, {"steps": 30, "width": 512, "height": 512, "guidance": 7.0}),
}
VRAM_GB = 14.0  # any two of the three fit (13.8 GB at most), all three (15.9 GB) do not
MIX = {"sdxl": 0.55, "animagine": 0.30, "sd15": 0.15}


@dataclass
class Job:
    id: int
    user: int
    guild: int
    model: str
    count: int
    created: float
    started: float | None = None
    ended: float | None = None

    @property
    def cost(self) -> float:
        return gpu_work({**MODELS[self.model].params, "count": self.count})

    @property
    def run_s(self) -> float:
        return MODELS[self.model].image_s * self.count


def arrivals(members: int, hours: float, load: float, rng: random.Random) -> list[Job]:
    """Sessions of jobs from a Zipf-active population, offering ``load`` of the reload-free capacity."""
    weights = [1 / (i + 1) ** 0.6 for i in range(members)]
    favourite = [rng.choices(list(MIX), list(MIX.values()))[0] for _ in range(members)]
    guild = [rng.randrange(20) for _ in range(members)]
    mean_run = sum(MIX[m] * MODELS[m].image_s for m in MIX) * 2.0  # counts average 2 images
    mean_session = 3.0
    sessions_per_s = load / mean_run / mean_session
    jobs: list[Job] = []
    t = 0.0
    while t < hours * 3600:
        t += rng.expovariate(sessions_per_s)
        user = rng.choices(range(members), weights)[0]
        at = t
        for _ in range(rng.randint(1, 5)):
            model = favourite[user] if rng.random() < 0.8 else rng.choices(list(MIX), list(MIX.values()))[0]
            count = rng.choices((1, 2, 4), (0.5, 0.2, 0.3))[0]
            jobs.append(Job(0, user, guild[user], model, count, at))
            at += rng.uniform(15, 60)
    jobs.sort(key=lambda j: j.created)
    for index, job in enumerate(jobs):
        job.id = index + 1
    return jobs


@dataclass
class Gpu:
    resident: list[str] = field(default_factory=list)  # least recently used first
    reloads: int = 0
    load_s: float = 0.0

    def use(self, model: str, queued: list[Job] | None = None) -> float:
        """Seconds spent loading ``model`` (0 when resident). Evicts the least recently used model,
        or, given the queue, the resident model fewest queued jobs want (then least recently used)."""
        if model in self.resident:
            self.resident.remove(model)
            self.resident.append(model)
            return 0.0
        while sum(MODELS[m].weights_gb for m in self.resident) + MODELS[model].weights_gb > VRAM_GB:
            if queued is None:
                self.resident.pop(0)
            else:
                wanted = {m: sum(1 for j in queued if j.model == m) for m in self.resident}
                self.resident.remove(min(self.resident, key=lambda m: (wanted[m], self.resident.index(m))))
        self.resident.append(model)
        self.reloads += 1
        self.load_s += MODELS[model].load_s
        return MODELS[model].load_s


def pick(order: str, queued: list[Job], history: list[Job], now: float, gpu: Gpu, window: float) -> Job:
    """The next job: FIFO's, or the real claim's (db.queue: ageing, then next_job over the heads with
    the models the GPU holds; window 0 is the order before the model-aware window)."""
    if order == "fifo" or len(queued) == 1:
        return min(queued, key=lambda j: j.id)
    heads: dict[int, Job] = {}
    for job in sorted(queued, key=lambda j: j.id):
        heads.setdefault(job.user, job)
    if len(heads) == 1:
        return next(iter(heads.values()))
    since = max(h.created for h in heads.values())
    users: dict[int, float] = {}
    guilds: dict[tuple[str, int], float] = {}
    served: dict[int, float] = {}
    for job in history:  # started jobs: service since the newest competing head, last start
        served[job.user] = max(served.get(job.user, 0.0), job.started or 0.0)
        if job.ended is None or job.ended > since:
            users[job.user] = users.get(job.user, 0.0) + job.cost
            key = guild_key(job.guild, job.user)
            guilds[key] = guilds.get(key, 0.0) + job.cost
    waiting = [(max(h.created, served.get(h.user, -1.0)), h.id) for h in heads.values()]
    oldest = min(waiting)
    by_id = {h.id: h for h in heads.values()}
    if oldest[0] < now - MAX_WAIT.total_seconds():
        return by_id[oldest[1]]
    rows = [Queued(h.id, h.user, guild_key(h.guild, h.user), h.cost, 1.0, h.model) for h in heads.values()]
    return by_id[next_job(rows, users, guilds, {u: served[u] for u in heads if u in served},
                          prefer=set(gpu.resident), window=0.0 if order == "fair" else window)]


def serve(jobs: list[Job], order: str, window: float, gpu: Gpu) -> list[Job]:
    """Run copies of ``jobs`` through one GPU in ``order``; the copies, with start and end times."""
    served = [Job(j.id, j.user, j.guild, j.model, j.count, j.created) for j in jobs]
    pending, queued, history, now = sorted(served, key=lambda j: (j.created, j.id)), [], [], 0.0
    while pending or queued:
        while pending and pending[0].created <= now:
            queued.append(pending.pop(0))
        if not queued:
            now = pending[0].created
            continue
        job = pick(order, queued, history, now, gpu, window)
        queued.remove(job)
        job.started = now + gpu.use(job.model, queued if order == "model-aware" else None)
        job.ended = now = job.started + job.run_s
        history.append(job)
    return served


def simulate(jobs: list[Job], order: str, window: float) -> dict[str, float]:
    gpu = Gpu()
    served = serve(jobs, order, window, gpu)
    run_s = sum(j.run_s for j in served)
    busy = run_s + gpu.load_s
    span = max(j.ended for j in served) - min(j.started for j in served) + MODELS[served[0].model].load_s  # type: ignore[operator, type-var]
    images = sum(j.count for j in served)
    waits = sorted(j.started - j.created for j in served)  # type: ignore[operator]
    return {
        "busy": min(1.0, busy / span),
        "per_gpu_minute": images / busy * 60,
        "ideal": images / run_s * 60,
        "reloads": gpu.reloads,
        "load_s": gpu.load_s,
        "p50": statistics.median(waits),
        "p95": waits[int(0.95 * (len(waits) - 1))],
        "jobs": len(served),
    }


def fairness_check(order: str, window: float, heavy_model: str = "sdxl", same_guild: bool = False) -> int:
    """bench/fairness.py's staggered pattern with models: the most heavy jobs started ahead of a
    light member's job after it was queued (its wait in heavy job-durations). The heavy member's
    model is loaded; three of the four light members ask for others."""
    heavy = [Job(i + 1, 1000, 1, heavy_model, 1, 0.0) for i in range(30)]
    light = [Job(31 + i, 2001 + i, 1 if same_guild else 2 + i, model, 1, 5.0 + 12.0 * i)
             for i, model in enumerate(("animagine", "sd15" if heavy_model != "sd15" else "sdxl", "animagine",
                                        heavy_model))]
    served = serve(heavy + light, order, window, Gpu([heavy_model]))
    return max(sum(1 for h in served if h.user == 1000 and job.created < h.started < job.started)  # type: ignore[operator]
               for job in served if job.user != 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--load", type=float, default=0.95, help="offered load, share of reload-free capacity")
    parser.add_argument("--window", type=float, default=MODEL_WINDOW,
                        help="work units within which a head on a loaded model goes first (db.queue.MODEL_WINDOW)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    jobs = arrivals(args.members, args.hours, args.load, random.Random(args.seed))
    print(f"{len(jobs)} jobs, {sum(j.count for j in jobs)} images from {len({j.user for j in jobs})} members; "
          f"VRAM for {VRAM_GB:g} GB of weights; offered load {args.load:.0%}")
    print(f"window {args.window:g} work units")
    print(f"{'order':<19} {'GPU busy':>8} {'img/GPU-min':>11} {'ideal':>6} {'of ideal':>8} {'reloads':>7} "
          f"{'p50 wait':>9} {'p95 wait':>9} {'fairness':>8}")
    for order in ("fifo", "fair", "model-aware LRU", "model-aware"):
        r = simulate(jobs, order, args.window)
        worst = fairness_check(order, args.window)
        label = {"fair": "fair (before)", "model-aware": "model-aware (today)"}.get(order, order)
        print(f"{label:<19} {r['busy']:>8.1%} {r['per_gpu_minute']:>11.1f} {r['ideal']:>6.1f} "
              f"{r['per_gpu_minute'] / r['ideal']:>8.1%} {r['reloads']:>7} {r['p50']:>8.0f}s {r['p95']:>8.0f}s "
              f"{worst:>7.0f}{'' if worst <= 2 else ' !'}")
    print("fairness: worst light member's wait in heavy-job durations (bench/fairness.py's bound: <= 2)")
    print("worst cases for the window (heavy jobs ahead of a light member on another model, and their GPU time):")
    for heavy_model, same_guild in (("sdxl", True), ("sd15", False), ("sd15", True)):
        cells = []
        for order in ("fifo", "fair", "model-aware"):
            worst = fairness_check(order, args.window, heavy_model, same_guild)
            cells.append(f"{order} {worst} ({worst * MODELS[heavy_model].image_s:.1f} s)")
        print(f"  heavy on {heavy_model}, {'same guild' if same_guild else 'other guilds'}: " + ", ".join(cells))


if __name__ == "__main__":
    main()
