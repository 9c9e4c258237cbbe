"""End-to-end overhead: N /imagine jobs through the fake Discord versus the same N pipeline calls.

    python bench/overhead.py [--jobs 20] [--rounds 6]

Both sides use one tiny SD 1.5 pipeline at 512x512 (same object, already loaded). The end-to-end
side includes everything a member waits for after the command: defer, database, queue, worker
thread, PNG encoding with parameters, moderation of the prompt and of the image, upload to the
(fake) Discord and the final edit.

Each round is a pair: N direct calls and N members' commands end to end, next to each other in
time, in alternating order (direct first in even rounds, end to end first in odd ones). The ratio
reported is the median of the pairs' ratios: on a shared machine whose speed drifts by 10-20% over
seconds to minutes, a pair shares the machine's state, where the best round of each side may come
from different moments (best/best and the ratio of the totals are printed too).

The fake Discord runs in a process of its own, as the real one runs on other machines: its work
(the gateway, parsing the uploads) still takes this machine's CPU, shared with the pipeline, and
is counted in the CPU figures, but it does not hold the bot's GIL or loop. ``--fake thread`` runs
it in this process on a thread and loop of its own (its Python then holds this process's GIL),
``--fake shared`` (or ``--shared-loop``) on the bot's loop, as the test suite does.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import discord
import torch
import yarl

from bot.__main__ import _loop_factory
from bot.client import Atelier
from bot.settings import load_settings
from inference.engine import Engine
from inference.models import ModelRegistry
from inference.testing import make_tiny
from tests.fakediscord import FakeDiscord
from tests.fakediscord.fixtures import running
from tests.fakediscord.server import API_PREFIX

PROMPT = "a lighthouse at dusk, oil painting"
TARGET = 1.05  # the acceptance of issue 6
T = TypeVar("T")


def thread_cpu() -> collections.Counter[str]:
    """CPU seconds each of this process's threads has used, by kind of thread (Linux /proc)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    kinds = {
        "MainThread": "bot's event loop",
        "fake-discord": "fake Discord",
        "atelier-": "pipeline",
        "python": "pipeline",
        "uvloop": "executor (moderation, encoding)",
        "asyncio": "executor (moderation, encoding)",
        "Thread-": "database (aiosqlite)",
    }
    used: collections.Counter[str] = collections.Counter()
    tick = os.sysconf("SC_CLK_TCK")
    with contextlib.suppress(OSError):
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as stat, open(f"/proc/self/task/{tid}/comm") as comm:
                    fields, name = stat.read().rsplit(")", 1)[1].split(), comm.read().strip()
            except OSError:
                continue
            name = names.get(int(tid), name)
            kind = next((k for prefix, k in kinds.items() if name.startswith(prefix)), "other")
            used[kind] += (int(fields[11]) + int(fields[12])) / tick
    return used


class FakeLoop:
    """Where the fake Discord's coroutines run: the bot's loop, or a thread and loop of their own."""

    def __init__(self, own_thread: bool) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        if own_thread:
            self.loop = _loop_factory(load_settings().uvloop)()
            threading.Thread(target=self.loop.run_forever, name="fake-discord", daemon=True).start()

    async def __call__(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.loop is None:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def close(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)


async def burst(fake: FakeDiscord, users: list[int], jobs: int) -> tuple[float, float]:
    """N members' /imagine at once; (perf_counter when sent, when every result was posted).

    perf_counter is CLOCK_MONOTONIC on Linux, so the stamps compare across processes."""
    started = time.perf_counter()
    inters = await asyncio.gather(
        *(
            fake.slash("imagine", {"prompt": PROMPT, "seed": n}, user_id=users[n], channel_id=fake.channel_id)
            for n in range(jobs)
        )
    )
    await fake.wait_for(
        lambda f: all(i.original is not None and i.original.attachments for i in inters),
        timeout=600,
        poll=False,
    )  # the fake's state alone: no polling
    return started, time.perf_counter()


class InProcessFake:
    """The fake Discord in this process: on the bot's loop, or on a thread and loop of its own."""

    def __init__(self, own_thread: bool) -> None:
        self.on = FakeLoop(own_thread)
        self.fake = FakeDiscord()
        self.where = "on a thread and loop of its own in this process" if own_thread else "on the bot's loop"

    async def start(self) -> None:
        await self.on(self.fake.start())
        self.fake.patch_discord()
        self.guild_id = self.fake.guild_id

    async def add_members(self, count: int) -> list[int]:
        return [int(self.fake.add_member(70_000 + n, f"bench{n}")["user"]["id"]) for n in range(count)]

    async def wait_identified(self, timeout: float = 5.0) -> None:
        await self.on(self.fake.wait_identified(timeout))

    async def burst(self, users: list[int], jobs: int) -> tuple[float, float]:
        return await self.on(burst(self.fake, users, jobs))

    def cpu_seconds(self) -> float | None:
        return None  # counted with this process's threads

    async def stop(self) -> None:
        await self.on(self.fake.stop())
        self.on.close()


def _serve_fake(conn: Any) -> None:
    """The child process of ProcessFake: a fake Discord answering the bench's requests on ``conn``."""

    async def serve() -> None:
        fake = FakeDiscord()
        await fake.start()
        loop = asyncio.get_running_loop()
        conn.send({"url": fake.url, "gateway_url": fake.gateway_url, "guild_id": fake.guild_id})
        while True:
            request, *args = await loop.run_in_executor(None, conn.recv)
            try:
                if request == "add_members":
                    reply: Any = [
                        int(fake.add_member(70_000 + n, f"bench{n}")["user"]["id"]) for n in range(args[0])
                    ]
                elif request == "wait_identified":
                    reply = await fake.wait_identified(args[0])
                elif request == "burst":
                    reply = await burst(fake, *args)
                elif request == "stop":
                    await fake.stop()
                    conn.send(("ok", None))
                    return
                else:
                    raise ValueError(f"unknown request {request!r}")
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("ok", reply))

    with asyncio.Runner(loop_factory=_loop_factory(load_settings().uvloop)) as runner:
        runner.run(serve())


class ProcessFake:
    """The fake Discord in a process of its own, as the real one runs on other machines: it still
    takes this machine's CPU (the two share its cores), but not this process's GIL."""

    where = "in a process of its own"

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_serve_fake, args=(child,), name="fake-discord", daemon=True)
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.process.start()
        info = await asyncio.to_thread(self.conn.recv)
        discord.http.Route.BASE = f"{info['url']}{API_PREFIX}"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(info["gateway_url"])
        self.guild_id = int(info["guild_id"])

    async def _ask(self, *request: Any) -> Any:
        async with self._lock:
            self.conn.send(request)
            status, reply = await asyncio.to_thread(self.conn.recv)
        if status != "ok":
            raise RuntimeError(f"fake Discord process: {reply}")
        return reply

    async def add_members(self, count: int) -> list[int]:
        return list(await self._ask("add_members", count))

    async def wait_identified(self, timeout: float = 5.0) -> None:
        await self._ask("wait_identified", timeout)

    async def burst(self, users: list[int], jobs: int) -> tuple[float, float]:
        started, ended = await self._ask("burst", users, jobs)
        return started, ended

    def cpu_seconds(self) -> float | None:
        """CPU the fake's process has used so far (Linux /proc)."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ask("stop"), 10)
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.kill()


def direct(engine: Engine, model: str, jobs: int) -> float:
    spec = engine.registry.get(model)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    for seed in range(jobs):
        pipe(
            prompt=PROMPT,
            negative_prompt="",
            num_inference_steps=spec.steps,
            guidance_scale=spec.guidance,
            width=spec.width,
            height=spec.height,
            generator=[torch.Generator("cpu").manual_seed(seed)],
            output_type="pil",
        )
    return time.perf_counter() - started


class Spans:
    """When each engine.run of the end-to-end side started and ended (wraps the shared engine)."""

    def __init__(self, engine: Engine) -> None:
        self.spans: list[tuple[float, float]] = []
        run = engine.run

        def timed(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return run(*args, **kwargs)  # type: ignore[arg-type]
            finally:
                self.spans.append((started, time.perf_counter()))

        engine.run = timed  # type: ignore[method-assign]


async def end_to_end(
    fake: InProcessFake | ProcessFake, users: list[int], jobs: int, spans: Spans
) -> tuple[float, dict[str, float]]:
    """Wall time of N members' /imagine until every result is posted, and where it went."""
    spans.spans.clear()
    started, ended = await fake.burst(users, jobs)
    runs = sorted(spans.spans)
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(runs)] or [0.0]
    return ended - started, {
        "busy": sum(b - a for a, b in runs) / (ended - started),
        "run_ms": statistics.median(b - a for a, b in runs) * 1000,
        "gap_ms": statistics.median(gaps) * 1000,
        "first_ms": (runs[0][0] - started) * 1000,
        "last_ms": (ended - runs[-1][1]) * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--no-moderation",
        action="store_true",
        help="turn off the semantic prompt layer and the NSFW image filter (pure plumbing)",
    )
    parser.add_argument(
        "--batch-max",
        type=int,
        default=1,
        help="images one pipeline call may carry for batched jobs (1: no batching, like the "
        "direct side; more measures batching as well as overhead)",
    )
    parser.add_argument(
        "--fake",
        choices=("process", "thread", "shared"),
        default="process",
        help="where the fake Discord runs: a process of its own (default, as the real one runs "
        "elsewhere), a thread and loop of its own in this process, or the bot's own loop "
        "(as the test suite runs it)",
    )
    parser.add_argument(
        "--shared-loop", action="store_const", const="shared", dest="fake", help="the same as --fake shared"
    )
    args = parser.parse_args()
    fake: InProcessFake | ProcessFake = (
        ProcessFake() if args.fake == "process" else InProcessFake(args.fake == "thread")
    )
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        toml = make_tiny(Path(tmp) / "models")
        registry = ModelRegistry.load(toml)
        model = registry.default.name
        engine = Engine(registry, "cpu", batch_max=args.batch_max)
        direct(engine, model, 1)  # load and warm up
        spans = Spans(engine)
        await fake.start()
        users = await fake.add_members(args.jobs)
        settings = load_settings(
            discord_token="bench",
            database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
            models=toml,
            devices="cpu",
            sync_guild=fake.guild_id,
            moderation_semantic=not args.no_moderation,
            nsfw_image_check=not args.no_moderation,
        )
        bot = Atelier(settings, engine_factory=lambda device: engine, guild_ready_timeout=0.05)
        direct_times, e2e_times, direct_cpu, e2e_cpu, fake_cpu = [], [], [], [], []
        by_thread: collections.Counter[str] = collections.Counter()
        where: list[dict[str, float]] = []
        try:
            async with running(bot, fake, timeout=60):  # type: ignore[arg-type]
                await bot.moderation.warmup()
                await end_to_end(fake, users, 1, spans)  # warm the whole path once

                async def direct_round() -> None:
                    cpu = time.process_time()
                    direct_times.append(await asyncio.to_thread(direct, engine, model, args.jobs))
                    direct_cpu.append(time.process_time() - cpu)

                async def e2e_round() -> None:
                    cpu, threads, fake_before = time.process_time(), thread_cpu(), fake.cpu_seconds()
                    took, parts = await end_to_end(fake, users, args.jobs, spans)
                    e2e_times.append(took)
                    where.append(parts)
                    fake_after = fake.cpu_seconds()
                    fake_used = (
                        fake_after - fake_before
                        if fake_after is not None and fake_before is not None
                        else 0.0
                    )
                    e2e_cpu.append(time.process_time() - cpu + fake_used)
                    fake_cpu.append(fake_used)
                    by_thread.update(thread_cpu() - threads)
                    if fake_used:
                        by_thread["fake Discord (its process)"] += fake_used

                # Each round pairs a direct run with an end-to-end run next to it in time, the order
                # alternating (direct first, then end-to-end first), so a slow spell of the machine
                # or a drift over the run falls on both sides alike.
                for n in range(args.rounds):
                    for side in (direct_round, e2e_round) if n % 2 == 0 else (e2e_round, direct_round):
                        await side()
        finally:
            await fake.stop()
    spec = registry.get(model)
    where_fake = fake.where
    best_direct, best_e2e = min(direct_times), min(e2e_times)
    print(
        f"model {model} {spec.width}x{spec.height}, {spec.steps} steps, {args.jobs} jobs, {args.rounds} rounds"
    )
    print(
        f"direct pipeline calls : {best_direct:7.2f} s  ({best_direct / args.jobs * 1000:.0f} ms/job; "
        f"rounds {', '.join(f'{t:.2f}' for t in direct_times)})"
    )
    print(
        f"end to end via Discord: {best_e2e:7.2f} s  ({best_e2e / args.jobs * 1000:.0f} ms/job; "
        f"rounds {', '.join(f'{t:.2f}' for t in e2e_times)})"
    )
    pairs = [e / d for e, d in zip(e2e_times, direct_times, strict=True)]
    print(
        f"moderation: {'off' if args.no_moderation else 'on (semantic prompt layer + NSFW image filter)'}; "
        f"batching: {'off' if args.batch_max <= 1 else f'up to {args.batch_max} images a call'}; "
        f"event loop: {type(asyncio.get_running_loop()).__module__.split('.')[0]}; fake Discord {where_fake}"
    )
    overhead = statistics.median(pairs)
    print(
        f"ratio (median of the {len(pairs)} paired rounds' end-to-end / direct): {overhead:.3f}x  "
        f"({', '.join(f'{r:.3f}' for r in pairs)}); total end-to-end / total direct: "
        f"{sum(e2e_times) / sum(direct_times):.3f}x; best / best: {best_e2e / best_direct:.3f}x"
    )
    print(f"target: end to end within {TARGET:.2f}x of direct: {'met' if overhead <= TARGET else 'NOT met'}")
    print(
        "where the end-to-end time went (median of rounds): engine.run busy "
        f"{statistics.median(w['busy'] for w in where) * 100:.1f}% of it, "
        f"{statistics.median(w['run_ms'] for w in where):.0f} ms a job (direct: "
        f"{statistics.median(direct_times) / args.jobs * 1000:.0f} ms); idle between two jobs "
        f"{statistics.median(w['gap_ms'] for w in where):.1f} ms; first job started "
        f"{statistics.median(w['first_ms'] for w in where):.0f} ms after the burst; last result posted "
        f"{statistics.median(w['last_ms'] for w in where):.0f} ms after its run"
    )
    print(
        f"process CPU time: direct {statistics.median(direct_cpu):.2f} s, e2e {statistics.median(e2e_cpu):.2f} s "
        f"(ratio {statistics.median(e2e_cpu) / statistics.median(direct_cpu):.3f}x; includes the fake Discord)"
    )
    if by_thread:
        runs = args.jobs * args.rounds
        print(
            "end-to-end CPU a job by thread: "
            + ", ".join(f"{kind} {seconds / runs * 1000:.1f} ms" for kind, seconds in by_thread.most_common())
        )


if __name__ == "__main__":
    # The event loop `atelier run` uses (uvloop where installed; ATELIER_UVLOOP=0 for asyncio's own).
    with asyncio.Runner(loop_factory=_loop_factory(load_settings().uvloop)) as runner:
        runner.run(main())
