"""Run one job with no Discord: the same validation, job service and inference pool, delivered to a file."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bot.engines import engine_factory, load_registry
from bot.errors import UserFacingError
from bot.jobs import ImagineOptions, JobService, Origin
from bot.settings import Settings
from db import migrate
from db.engine import create_engine, create_sessionmaker
from db.models import Job, Output
from inference.pool import InferencePool, default_devices


class FileDelivery:
    """A Delivery that writes the result to a path and prints progress to the terminal."""

    def __init__(self, path: Path, *, quiet: bool = False) -> None:
        self.path = path
        self.quiet = quiet
        self.done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    async def show_queued(self, job: Job, position: int, total: int, eta_seconds: float | None) -> int | None:
        return None

    async def show_progress(self, job: Job, step: int, total: int) -> None:
        if not self.quiet:
            print(f"step {step}/{total}", flush=True)

    async def deliver(self, job: Job, outputs: list[Output]) -> int | None:
        grid = [o for o in outputs if o.index == -1]
        chosen = grid[0] if grid else outputs[0]
        await asyncio.to_thread(self.path.write_bytes, chosen.data)
        if not self.done.done():
            self.done.set_result(None)
        return None

    async def deliver_failure(self, job: Job, message: str) -> None:
        if not self.done.done():
            self.done.set_result(message)


async def generate_once(settings: Settings, options: ImagineOptions, output: Path, *, quiet: bool = False) -> None:
    """Raise UserFacingError with a one-line message when the job is refused or fails."""
    registry = load_registry(settings)
    with tempfile.TemporaryDirectory(prefix="atelier-generate-") as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/generate.db")
        try:
            await migrate.upgrade(engine)
            service = JobService(create_sessionmaker(engine), registry, progress_interval=0.5)
            delivery = FileDelivery(output, quiet=quiet)
            service.delivery = delivery
            params = service.prepare_imagine(options)
            from bot.client import build_moderation

            moderation = build_moderation(settings, service.sessions)
            service.listeners.append(moderation)
            await moderation.warmup()
            service.image_check = lambda job, pngs: moderation.check_images(job, pngs, nsfw_channel=False)
            await moderation.precheck(params["prompt"], params["negative_prompt"], user_id=0, guild_id=None,
                                      channel_id=None, nsfw_channel=False)
            devices = settings.device_list or await asyncio.to_thread(default_devices)

            pool = InferencePool(service, engine_factory(settings, registry), devices[:1])
            service.pool = pool
            await service.submit(command="imagine", params=params, origin=Origin(user_id=0, user_name="cli"))
            await pool.start()
            try:
                failure = await delivery.done
            finally:
                await pool.stop()
                await service.drain()
            if failure is not None:
                raise UserFacingError(failure)
        finally:
            await engine.dispose()
