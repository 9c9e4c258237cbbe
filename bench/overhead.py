"""End-to-end overhead: N /imagine jobs through the fake Discord versus the same N pipeline calls.

    python bench/overhead.py [--jobs 20] [--rounds 2]

Both sides use one tiny SD 1.5 pipeline at 512x512 (same object, already loaded). The end-to-end
side includes everything a member waits for after the command: defer, database, queue, worker
thread, PNG encoding with parameters, upload to the (fake) Discord and the final edit. Rounds
alternate direct and end-to-end so machine noise hits both; the best round of each is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bot.__main__ import _loop_factory
from bot.client import Atelier
from bot.settings import load_settings
from inference.engine import Engine
from inference.models import ModelRegistry
from inference.tiny import make_tiny
from tests.fakediscord import FakeDiscord
from tests.fakediscord.fixtures import running

PROMPT = "a lighthouse at dusk, oil painting"


def direct(engine: Engine, model: str, jobs: int) -> float:
    spec = engine.registry.get(model)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    for seed in range(jobs):
        pipe(prompt=PROMPT, negative_prompt="", num_inference_steps=spec.steps, guidance_scale=spec.guidance,
             width=spec.width, height=spec.height, generator=[torch.Generator("cpu").manual_seed(seed)],
             output_type="pil")
    return time.perf_counter() - started


async def end_to_end(fake: FakeDiscord, users: list[int], jobs: int) -> float:
    started = time.perf_counter()
    inters = await asyncio.gather(*(
        fake.slash("imagine", {"prompt": PROMPT, "seed": n}, user_id=users[n], channel_id=fake.channel_id)
        for n in range(jobs)))
    await fake.wait_for(lambda f: all(i.original is not None and i.original.attachments for i in inters), timeout=600)
    return time.perf_counter() - started


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--no-moderation", action="store_true",
                        help="turn off the semantic prompt layer and the NSFW image filter (pure plumbing)")
    parser.add_argument("--batch-max", type=int, default=1,
                        help="images one pipeline call may carry for batched jobs (1: no batching, like the "
                             "direct side; more measures batching as well as overhead)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory() as tmp:
        toml = make_tiny(Path(tmp) / "models")
        registry = ModelRegistry.load(toml)
        model = registry.default.name
        engine = Engine(registry, "cpu", batch_max=args.batch_max)
        direct(engine, model, 1)  # load and warm up
        fake = FakeDiscord()
        await fake.start()
        fake.patch_discord()
        users = [int(fake.add_member(70_000 + n, f"bench{n}")["user"]["id"]) for n in range(args.jobs)]
        settings = load_settings(discord_token="bench", database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                                 models=toml, devices="cpu", sync_guild=fake.guild_id,
                                 moderation_semantic=not args.no_moderation,
                                 nsfw_image_check=not args.no_moderation)
        bot = Atelier(settings, engine_factory=lambda device: engine, guild_ready_timeout=0.05)
        direct_times, e2e_times, direct_cpu, e2e_cpu = [], [], [], []
        try:
            async with running(bot, fake, timeout=60):
                await bot.moderation.warmup()
                await end_to_end(fake, users, 1)  # warm the whole path once
                for _ in range(args.rounds):
                    cpu = time.process_time()
                    direct_times.append(await asyncio.to_thread(direct, engine, model, args.jobs))
                    direct_cpu.append(time.process_time() - cpu)
                    cpu = time.process_time()
                    e2e_times.append(await end_to_end(fake, users, args.jobs))
                    e2e_cpu.append(time.process_time() - cpu)
        finally:
            await fake.stop()
    spec = registry.get(model)
    best_direct, best_e2e = min(direct_times), min(e2e_times)
    print(f"model {model} {spec.width}x{spec.height}, {spec.steps} steps, {args.jobs} jobs, {args.rounds} rounds")
    print(f"direct pipeline calls : {best_direct:7.2f} s  ({best_direct / args.jobs * 1000:.0f} ms/job; "
          f"rounds {', '.join(f'{t:.2f}' for t in direct_times)})")
    print(f"end to end via Discord: {best_e2e:7.2f} s  ({best_e2e / args.jobs * 1000:.0f} ms/job; "
          f"rounds {', '.join(f'{t:.2f}' for t in e2e_times)})")
    pairs = [e / d for e, d in zip(e2e_times, direct_times, strict=True)]
    print(f"moderation: {'off' if args.no_moderation else 'on (semantic prompt layer + NSFW image filter)'}; "
          f"batching: {'off' if args.batch_max <= 1 else f'up to {args.batch_max} images a call'}; "
          f"event loop: {type(asyncio.get_running_loop()).__module__.split('.')[0]}")
    print(f"ratio (best e2e / best direct): {best_e2e / best_direct:.3f}x   "
          f"median of per-round ratios: {statistics.median(pairs):.3f}x  ({', '.join(f'{r:.3f}' for r in pairs)})")
    print(f"process CPU time: direct {statistics.median(direct_cpu):.2f} s, e2e {statistics.median(e2e_cpu):.2f} s "
          f"(ratio {statistics.median(e2e_cpu) / statistics.median(direct_cpu):.3f}x; includes the fake Discord)")


if __name__ == "__main__":
    # The event loop `atelier run` uses (uvloop where installed; ATELIER_UVLOOP=0 for asyncio's own).
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(main())
