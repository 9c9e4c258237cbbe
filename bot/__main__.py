"""The `atelier` command line (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings, SettingsError, load_settings
from inference.models import RegistryError

log = logging.getLogger("atelier")

# glibc's mallopt(M_MMAP_THRESHOLD): blocks at least this large get a mapping of their own, which
# goes back to the system when freed. 128 KiB is glibc's own starting value, held fixed.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="atelier", description="Atelier: open image generation for Discord.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start the bot (needs DISCORD_TOKEN)")

    gen = sub.add_parser("generate", help="run one /imagine job locally, with no Discord")
    gen.add_argument("prompt")
    gen.add_argument("--negative", default=None)
    gen.add_argument("--model", default=None)
    gen.add_argument("--seed", type=int, default=None)
    gen.add_argument("--steps", type=int, default=None)
    gen.add_argument("--guidance", type=float, default=None)
    gen.add_argument("--aspect", default=None)
    gen.add_argument("--count", type=int, default=1)
    gen.add_argument("-o", "--output", type=Path, required=True)
    gen.add_argument("-q", "--quiet", action="store_true")

    models = sub.add_parser("models", help="model registry tools").add_subparsers(dest="models_command", required=True)
    tiny = models.add_parser("make-tiny", help="write tiny random-weight models and DIR/models.toml")
    tiny.add_argument("dir", type=Path)
    models.add_parser("list", help="list the models in ATELIER_MODELS")
    pull = models.add_parser("pull", help="download models from the Hugging Face hub ahead of their first job "
                                          "(HF_TOKEN for gated ones, HF_HOME for the cache)")
    pull.add_argument("names", nargs="*", metavar="NAME", help="registry models (default: the default model)")
    pull.add_argument("--all", action="store_true", help="every model in the registry")
    pull.add_argument("--device", default=None, help="the device they will run on, which picks the weights' "
                                                       "precision (default: ATELIER_DEVICES, else this machine's)")

    sub.add_parser("doctor", help="check this host: torch and GPUs, each model cached/missing/gated/bad, database, "
                                  "Redis, tokens, disk, ffmpeg (exit 1 when something blocks)")

    db = sub.add_parser("db", help="database tools").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply database migrations")

    worker = sub.add_parser("worker", help="serve GPU jobs from a bot's Redis queue (run on a GPU host)")
    # The Redis URL holds a password: it comes from ATELIER_REDIS_URL, never argv (the process list
    # shows every process's arguments to every user of the machine). --redis is refused with a hint.
    worker.add_argument("--redis", default=None, help=argparse.SUPPRESS)
    worker.add_argument("--devices", default=None, help="e.g. cuda:0,cuda:1 (default: every CUDA device, else cpu)")
    worker.add_argument("--queue", default="atelier", help="queue name (the bot's ATELIER_REDIS_QUEUE)")
    worker.add_argument("--train", action="store_true",
                        help="also run LoRA training jobs (/train) on these devices; ATELIER_DATA_DIR must be the "
                             "bot's data folder (shared storage), where the LoRAs are written")
    worker.add_argument("--engine", default=None, help=argparse.SUPPRESS)  # module:factory, for tests
    worker.add_argument("--sweep-seconds", type=int, default=10, help=argparse.SUPPRESS)
    return parser


def _setup_logging(level: str) -> None:
    import discord

    from bot import logs

    discord.utils.setup_logging(level=getattr(logging, level, logging.INFO), root=True)
    logs.install()  # records name their job (" job=N") where one is known


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            return _run(settings)
        if args.command == "generate":
            return _generate(settings, args)
        if args.command == "models":
            return _models(settings, args)
        if args.command == "db":
            return _db(settings)
        if args.command == "doctor":
            from bot.cli import doctor

            logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
            return doctor.main(settings)
        if args.command == "worker":
            return _worker(settings, args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RegistryError as exc:  # the models TOML, ATELIER_MODELS_DIR or ATELIER_PRELOAD
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1


def tune_malloc() -> bool:
    """Keep a process that runs for weeks from growing on freed image buffers; True if applied.

    glibc raises its mmap threshold every time a mapped block is freed (up to 32 MiB), so after the
    first results every PNG, decoded image, upload body and base64 payload (0.1-10 MiB each) is cut
    from the heap arena of whichever thread touched it, and the free holes they leave are kept:
    resident memory climbs job after job while the live heap stays flat. A fixed threshold keeps
    such buffers in their own mappings. An operator's own MALLOC_MMAP_THRESHOLD_ (or glibc tunable)
    wins, and other C libraries (musl, macOS) are left alone.
    """
    if sys.platform != "linux" or "MALLOC_MMAP_THRESHOLD_" in os.environ \
            or "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    import ctypes

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def _run(settings: Settings) -> int:
    token = settings.require_token()
    from bot.errors import StartupError
    from bot.startup import preflight

    redis_url = settings.redis_url.get_secret_value() if settings.redis_url is not None else None
    try:
        asyncio.run(preflight(settings.database, redis_url))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tune_malloc()
    _setup_logging(settings.log_level)
    import aiohttp
    import discord

    from bot.client import Atelier

    async def runner() -> None:
        async with Atelier(settings) as bot:
            await bot.start(token)

    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.uvloop)) as run:
            run.run(runner())
    except discord.LoginFailure:
        print("error: DISCORD_TOKEN was rejected by Discord (check the token in the developer portal)", file=sys.stderr)
        return 2
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound) as exc:
        from bot.startup import describe

        print(f"error: cannot reach Discord: {describe(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


def _loop_factory(use_uvloop: bool) -> Any:
    """uvloop where it is installed and ATELIER_UVLOOP allows it; None: asyncio's own loop."""
    if not use_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli.generate import generate_once
    from bot.errors import UserFacingError
    from bot.services.jobs import ImagineOptions

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    options = ImagineOptions(prompt=args.prompt, negative=args.negative, model=args.model, aspect=args.aspect,
                             steps=args.steps, guidance=args.guidance, seed=args.seed, count=args.count)
    try:
        written = asyncio.run(generate_once(settings, options, args.output, quiet=args.quiet))
    except UserFacingError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(map(str, written))}")
    return 0


def _models(settings: Settings, args: argparse.Namespace) -> int:
    if args.models_command == "make-tiny":
        from inference.testing import make_tiny

        toml = make_tiny(args.dir)
        print(f"wrote tiny models and {toml}; use ATELIER_MODELS={toml}")
        return 0
    from bot.engines import load_registry
    from inference.models import RegistryError

    try:
        registry = load_registry(settings)
    except RegistryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.models_command == "pull":
        from bot.cli.pull import pull

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        device = args.device or (settings.device_list or _devices())[0]
        return pull(registry, registry.names() if args.all else args.names, device)
    for spec in registry.specs():
        marker = "*" if spec.name == registry.default.name else " "
        print(f"{marker} {spec.name:32} {spec.kind:16} {spec.source}")
    return 0


def _devices() -> list[str]:
    from inference.pool import default_devices

    return default_devices()


def _db(settings: Settings) -> int:
    from db import migrate
    from db.engine import create_engine

    async def upgrade() -> None:
        engine = create_engine(settings.database)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    from bot.errors import StartupError
    from bot.startup import check_database

    try:
        asyncio.run(check_database(settings.database))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    asyncio.run(upgrade())
    print("database is up to date")
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    """A GPU host: the same engine as `atelier run`, fed by the bot over Redis (inference/remote.py)."""
    import importlib

    from bot import logs
    from bot.errors import StartupError
    from bot.startup import check_redis
    from inference.remote_worker import run_worker

    if args.redis is not None:
        raise SettingsError("--redis is no longer accepted (the command line is visible to every user of the "
                            "machine): export ATELIER_REDIS_URL instead")
    redis_url = settings.require_redis()
    try:
        asyncio.run(check_redis(redis_url, setting="ATELIER_REDIS_URL"))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tune_malloc()
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO))
    logs.install()
    if args.devices:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    else:
        from inference.pool import default_devices

        devices = default_devices()
    if args.train:  # this worker's devices train (the engine factory reads the setting)
        settings = settings.model_copy(update={"train_devices": ",".join(devices)})
    if args.engine:
        module, _, name = args.engine.partition(":")
        factory = getattr(importlib.import_module(module), name)
    else:
        from bot.engines import engine_factory, load_registry

        factory = engine_factory(settings, load_registry(settings), batch_max=1)
    try:
        asyncio.run(run_worker(redis_url, devices, factory, queue_name=args.queue, sweep_seconds=args.sweep_seconds))
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
