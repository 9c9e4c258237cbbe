"""Soak: does the bot's (and a worker's) memory stay flat over thousands of jobs?

    python bench/soak.py [--jobs 2000] [--minutes M] [--members 4] [--in-flight 4]
                         [--engine sleep|tiny] [--remote redis://127.0.0.1:6379/0]

The real bot (`atelier run`: tiny models, SQLite, moderation on) runs in its own process against
the fake Discord in this process (bench/bot_process.py); with ``--remote`` inference runs in an
`atelier worker` process fed over Redis, measured the same way. N members each keep
``--in-flight`` commands going until ``--jobs`` commands were answered (or ``--minutes`` passed):
/imagine alone and with ``count``, Reroll and Upscale buttons on earlier results, and a few
refusals (a prompt moderation blocks, an option out of range) from members kept apart so no one is
banned mid-run.

Every ``--sample-every`` answered commands it asks each process's probe (bench/probe.py, a debug
hook loaded into the process, not part of the bot) for resident memory, glibc malloc's bytes in
use and free, Python's allocated blocks and gc-tracked objects, and the event loop's lag, then
prints the table and the growth per 1,000 jobs after ``--warmup`` jobs (least squares over the
samples from there on, and first-to-last). ``--types`` also prints which object types grew.

``--engine sleep`` (default) stands in for a GPU with a step that sleeps (a PNG of the requested
size is still drawn, encoded, scored and posted); ``--engine tiny`` runs the tiny pipelines on
this machine's CPU (much slower: keep --jobs small on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import discord  # noqa: E402

from bench.ack import BotProcess  # noqa: E402
from bench.probe import ProbeClient  # noqa: E402
from inference.testing import make_tiny  # noqa: E402
from tests.fakediscord import FakeDiscord  # noqa: E402

TARGET_MB_PER_1000 = 20.0
PROMPTS = ["a lighthouse at dusk, oil painting", "a red fox in fresh snow", "a city of glass at night",
           "a bowl of ramen, studio lighting", "an old map of an imaginary island", "a cat astronaut, watercolor"]
REFUSALS: list[dict[str, Any]] = [{"prompt": "explicit sex scene on a beach"},
                                  {"prompt": "a quiet harbour", "steps": 999}]
# Share of each command in the mix (the rest is /imagine without count).
MIX = {"count": 0.2, "reroll": 0.15, "upscale": 0.12, "refusal": 0.03}


def has_image(message: Any) -> bool:
    return message is not None and any(a.filename.endswith((".png", ".webp", ".jpg")) for a in message.attachments)


class Child(BotProcess):
    """A process of the bot's (bench/bot_process.py with the probe loaded), its log and its probe."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], tmp: Path) -> None:
        self.name = name
        self.log = tmp / f"{name}.log"
        socket_path = str(tmp / f"{name}.sock")
        env = {**env, "BENCH_INSTRUMENT": str(ROOT / "bench" / "probe.py"), "BENCH_PROBE_SOCKET": socket_path}
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bot_process.py"), *argv], cwd=ROOT,
                                     env=env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT)
        # stop() is BotProcess's: SIGINT, as an operator's Ctrl-C, then a kill if it hangs.
        self.probe = ProbeClient(socket_path)

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"the {self.name} process exited:\n{self.log.read_text()[-3000:]}")
        return True

    async def ask(self, request: str) -> Any:
        return await asyncio.to_thread(self.probe.ask, request)


class Soak:
    """The members' side: keeps commands in flight and counts how each ended."""

    def __init__(self, fake: FakeDiscord, members: list[int], refusers: list[int], args: argparse.Namespace,
                 on_answered: Any) -> None:
        self.fake = fake
        self.members = members
        self.refusers = collections.deque(refusers)
        self.args = args
        self.rng = random.Random(args.seed)
        self.started = self.answered = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.results: collections.deque[tuple[int, list[str]]] = collections.deque(maxlen=64)
        self.deadline = time.monotonic() + args.minutes * 60 if args.minutes else None
        self.on_answered = on_answered

    def more(self) -> bool:
        if self.deadline is not None:
            return time.monotonic() < self.deadline
        return self.started < self.args.jobs

    def pick(self) -> str:
        roll = self.rng.random()
        for kind, share in MIX.items():
            if roll < share:
                return kind
            roll -= share
        return "imagine"

    async def member(self, user: int) -> None:
        while self.more():
            self.started += 1
            kind = self.pick()
            try:
                outcome = await self.command(kind, user)
            except (TimeoutError, LookupError, PermissionError) as exc:
                outcome = "lost"
                print(f"  {kind} by {user}: {type(exc).__name__}: {str(exc)[:200]}", flush=True)
            self.outcomes[outcome] += 1
            self.answered += 1
            await self.on_answered(self.answered)

    async def command(self, kind: str, user: int) -> str:
        targets = {"reroll": "atelier:reroll:", "upscale": "atelier:upscale:"}
        if kind in targets:
            choices = [(m, c) for m, ids in self.results for c in ids if c.startswith(targets[kind])]
            if not choices:
                kind = "imagine"
            else:
                message_id, custom_id = self.rng.choice(choices)
                inter = await self.fake.click(message_id, custom_id, user_id=user)
        if kind == "refusal":
            user = self.refusers[0]
            self.refusers.rotate(-1)
            options = dict(self.rng.choice(REFUSALS))
            inter = await self.fake.slash("imagine", options, user_id=user)
        elif kind in ("imagine", "count"):
            options = {"prompt": self.rng.choice(PROMPTS), "seed": self.rng.randrange(1 << 31)}
            if kind == "count":
                options["count"] = self.rng.choice((2, 3, 4))
            inter = await self.fake.slash("imagine", options, user_id=user)
        try:
            await inter.wait_for(lambda i: _answered(i.original) or i.followups, timeout=self.args.timeout)
        except TimeoutError:
            o = inter.original
            print(f"  {kind} by {user}: no answer; original "
                  + (f"loading={o.loading} embeds={[e.get('title') for e in o.embeds]} "
                     f"files={[a.filename for a in o.attachments]} edits={o.edits}" if o else "none")
                  + f", acked={inter.acked} errors={inter.error_codes} followups="
                  f"{[(m.ephemeral, [e.get('title') for e in m.embeds], m.content[:80]) for m in inter.followups]}",
                  flush=True)
            raise
        message = inter.original if _answered(inter.original) else inter.followups[0]
        if not has_image(message):
            if kind == "refusal":
                return "refused"
            titles = [f"{e.get('title')}: {e.get('description')}" for e in message.embeds] or [message.content[:80]]
            print(f"  {kind} by {user} answered without an image: {titles}", flush=True)
            return f"{kind} refused"
        self.results.append((message.id, message.custom_ids))
        self._forget_files(message)
        return "delivered"

    def _forget_files(self, message: Any) -> None:
        """Drop the fake's copy of the posted files (the bench process would grow by every image)."""
        for attachment in message.attachments:
            self.fake.cdn.pop(attachment.id, None)
            attachment.data = attachment.data[:64]

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.member(user)) for user in self.members for _ in range(self.args.in_flight)]
        await asyncio.gather(*tasks)


def _answered(message: Any) -> bool:
    """The command's last word: a picture, or anything but the placeholder, queue and progress."""
    if message is None or message.loading:
        return False
    return has_image(message) or not any(e.get("title") in ("Queued", "Generating") for e in message.embeds)


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope (y per x)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den if den else 0.0


MB = 1024 * 1024


def report(name: str, samples: list[tuple[int, dict[str, Any]]], warmup: int) -> bool:
    print(f"\n{name}: jobs | RSS MB | malloc used / free MB | Python blocks (k) | gc objects (k) | loop lag p99 / max ms")
    for jobs, s in samples:
        lag = (f"{s['lag_p99'] * 1000:7.1f} / {s['lag_max'] * 1000:7.1f}" if s.get("lag_max") is not None
               else "      - /       -")
        print(f"{jobs:6d} | {s['rss'] / MB:7.1f} | {s.get('malloc_used', 0) / MB:7.1f} / {s.get('malloc_free', 0) / MB:6.1f}"
              f" | {s['blocks'] / 1000:8.1f} | {s['gc_objects'] / 1000:7.1f} | {lag}")
    after = [(j, s) for j, s in samples if j >= warmup]
    if len(after) < 2:
        print(f"{name}: not enough samples after the warm-up of {warmup} jobs")
        return False
    xs = [j / 1000 for j, _ in after]
    fit = {key: slope(xs, [s[key] for _, s in after]) for key in ("rss", "malloc_used", "blocks", "gc_objects")
           if key in after[0][1]}
    (j0, s0), (j1, s1) = after[0], after[-1]
    span = (s1["rss"] - s0["rss"]) / MB / ((j1 - j0) / 1000)
    print(f"{name}: growth per 1,000 jobs after {warmup}: RSS {fit['rss'] / MB:+.1f} MB (least squares), "
          f"{span:+.1f} MB (first to last); malloc in use {fit.get('malloc_used', 0) / MB:+.1f} MB; "
          f"Python blocks {fit['blocks'] / 1000:+.1f}k; gc objects {fit['gc_objects'] / 1000:+.1f}k")
    return fit["rss"] / MB <= TARGET_MB_PER_1000 and span <= TARGET_MB_PER_1000


def type_growth(name: str, before: list[list[Any]], after: list[list[Any]]) -> None:
    old = dict(map(tuple, before))
    grown = sorted(((count - old.get(t, 0), t, count) for t, count in after), reverse=True)[:15]
    print(f"{name}: object types that grew most since the warm-up: " +
          ", ".join(f"{t} {d:+d} ({c})" for d, t, c in grown if d > 0))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000, help="commands to answer (default 2000)")
    parser.add_argument("--minutes", type=float, default=None, help="run for this long instead of --jobs")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=4, help="commands each member keeps going")
    parser.add_argument("--sample-every", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--engine", choices=("sleep", "tiny"), default="sleep")
    parser.add_argument("--step-seconds", type=float, default=0.01, help="--engine sleep: one step's sleep")
    parser.add_argument("--remote", metavar="REDIS_URL", default=None,
                        help="inference in an `atelier worker` process fed through this Redis (measured too)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds one command may take")
    parser.add_argument("--types", action="store_true", help="print the object types that grew")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the logs and database in this folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        toml = make_tiny(tmp / "models")
        fake = FakeDiscord()
        await fake.start()
        fake.patch_discord()
        members = [int(fake.add_member(90_000 + n, f"soak{n}")["user"]["id"]) for n in range(args.members)]
        refusers = [int(fake.add_member(95_000 + n, f"refuser{n}")["user"]["id"]) for n in range(50)]
        db = tmp / "soak.db"
        env = {**os.environ, "DISCORD_TOKEN": "bench.bot.token", "ATELIER_DATABASE_URL": f"sqlite:///{db}",
               "ATELIER_MODELS": str(toml), "ATELIER_DEVICES": "cpu", "ATELIER_SYNC_GUILD": str(fake.guild_id),
               # A few members stand for a busy server's many: each keeps several commands going,
               # which the per-member cooldown between actions would refuse.
               "ATELIER_COOLDOWN": "0",
               "ATELIER_DEFAULT_DAILY_CREDITS": "-1", "ATELIER_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
               "BENCH_API_BASE": discord.http.Route.BASE,
               "BENCH_GATEWAY": str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY),
               "BENCH_ENGINE": args.engine, "BENCH_STEP_SECONDS": str(args.step_seconds), "OMP_NUM_THREADS": "1"}
        children: list[Child] = []
        if args.remote:
            env["ATELIER_REDIS_URL"] = args.remote
            env["ATELIER_REDIS_QUEUE"] = queue = f"soak-{os.getpid()}"
            children.append(Child("worker", ["worker", "--queue", queue, "--devices", "cpu"],  # Redis: ATELIER_REDIS_URL
                                  env, tmp))
        env["ATELIER_LOG_LEVEL"] = "INFO"  # the bench waits for "moderation ready"
        bot = Child("bot", [], env, tmp)
        children.insert(0, bot)
        samples: dict[str, list[tuple[int, dict[str, Any]]]] = {c.name: [] for c in children}
        types: dict[str, list[Any]] = {}
        sampling = asyncio.Lock()

        async def sample(jobs: int) -> None:
            async with sampling:
                for child in children:
                    child.alive()
                    if args.types and jobs == args.warmup:
                        types[child.name] = await child.ask("types")
                    samples[child.name].append((jobs, await child.ask("stats")))
                rss = ", ".join(f"{c.name} {samples[c.name][-1][1]['rss'] / MB:.0f} MB" for c in children)
                print(f"{jobs} jobs: {rss}", flush=True)

        async def on_answered(answered: int) -> None:
            if answered % args.sample_every == 0:
                await sample(answered)

        try:
            await fake.wait_for(lambda f: bot.alive() and any(s.identified for s in f.gateway.sessions),
                                timeout=300, what="the bot to connect")
            await fake.wait_for(lambda f: bot.alive() and "moderation ready" in bot.log.read_text(),
                                timeout=300, what="the bot's moderation warm-up")
            await sample(0)
            soak = Soak(fake, members, refusers, args, on_answered)
            started = time.perf_counter()
            await soak.run()
            elapsed = time.perf_counter() - started
            if soak.answered % args.sample_every:
                await sample(soak.answered)
            print(f"\n{soak.answered} commands in {elapsed:.0f} s ({args.engine} engine, "
                  f"{'remote worker' if args.remote else 'in-process pool'}): {dict(soak.outcomes)}")
            for child in children:
                trimmed = await child.ask("trim")
                print(f"{child.name}: malloc_trim(0) at the end: RSS {trimmed['before'] / MB:.0f} -> "
                      f"{trimmed['after'] / MB:.0f} MB (free memory glibc kept)")
            if args.types:
                for child in children:
                    if child.name in types:
                        type_growth(child.name, types[child.name], await child.ask("types"))
        finally:
            for child in children:
                child.stop()
            await fake.stop()
    ok = all([report(name, rows, args.warmup) for name, rows in samples.items()])
    print(f"acceptance (growth after {args.warmup} jobs <= {TARGET_MB_PER_1000:.0f} MB per 1,000 jobs): "
          f"{'PASS' if ok else 'FAIL'}")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
