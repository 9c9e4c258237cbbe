"""Run one job with no Discord: the same validation, job service and inference pool, delivered to a file."""

from __future__ import annotations

import asyncio
import io
import tempfile
from pathlib import Path

from PIL import Image

from bot.engines import engine_factory, load_registry
from bot.errors import UserFacingError
from bot.services.hooks import Hooks, Origin
from bot.services.jobs import ImagineOptions, JobService
from bot.settings import Settings
from db import migrate
from db.engine import create_engine, create_sessionmaker
from db.models import Job, Output
from inference.hub_progress import loading_text
from inference.pool import InferencePool, default_devices

# What -o may name: the format is the file's extension.
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def check_output(path: Path) -> None:
    """Refuse an output path that cannot be written before any model loads (one line, UserFacingError)."""
    if path.suffix.lower() not in FORMATS:
        raise UserFacingError(f"-o {path}: the file must end in .png, .jpg, .jpeg or .webp")
    folder = path.parent
    if not folder.is_dir():
        raise UserFacingError(f"-o {path}: the folder {folder} does not exist")
    if path.is_dir():
        raise UserFacingError(f"-o {path}: that is a folder; name a file in it")


def output_paths(path: Path, count: int) -> list[Path]:
    """Where a job's images go: ``path`` alone, or with several images the grid at ``path`` and each
    image beside it (``out-1.png``, ``out-2.png``...)."""
    if count <= 1:
        return [path]
    return [path, *(path.with_name(f"{path.stem}-{i}{path.suffix}") for i in range(1, count + 1))]


def _encode(png: bytes, path: Path) -> bytes:
    fmt = FORMATS[path.suffix.lower()]
    if fmt == "PNG":
        return png  # keeps the A1111 parameters chunk
    with Image.open(io.BytesIO(png)) as image:
        out = io.BytesIO()
        image.convert("RGB").save(out, fmt, quality=95)
        return out.getvalue()


class FileDelivery:
    """A Delivery that writes the result to a path and prints progress to the terminal."""

    def __init__(self, path: Path, *, quiet: bool = False) -> None:
        self.path = path
        self.quiet = quiet
        self.done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self.written: list[Path] = []

    async def show_queued(self, job: Job, position: int, total: int, eta_seconds: float | None) -> int | None:
        return None

    async def show_progress(self, job: Job, step: int, total: int) -> None:
        if not self.quiet:
            print(f"step {step}/{total}", flush=True)

    async def show_loading(self, job: Job, model: str, done: int, total: int) -> None:
        if not self.quiet:
            print(loading_text(model, done, total), flush=True)

    async def deliver(self, job: Job, outputs: list[Output]) -> int | None:
        grid = [o for o in outputs if o.index == -1]
        singles = sorted((o for o in outputs if o.index >= 0), key=lambda o: o.index)
        files = grid + singles if grid else singles[:1]
        paths = output_paths(self.path, len(singles) if grid else 1)
        try:
            for output, path in zip(files, paths, strict=True):
                data = await asyncio.to_thread(_encode, output.data, path)
                await asyncio.to_thread(path.write_bytes, data)
                self.written.append(path)
        except OSError as exc:  # the job is done either way: say why, never wait forever
            outcome: str | None = f"could not write {exc.filename or self.path}: {exc.strerror or exc}"
        else:
            outcome = None
        if not self.done.done():
            self.done.set_result(outcome)
        return None

    async def deliver_failure(self, job: Job, message: str) -> None:
        if not self.done.done():
            self.done.set_result(message)


async def generate_once(settings: Settings, options: ImagineOptions, output: Path, *,
                        quiet: bool = False) -> list[Path]:
    """The files written; raise UserFacingError with a one-line message when the job is refused or fails."""
    check_output(output)
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
            # The bot's hooks less quotas and metrics: a local run spends no member's credits.
            service.hooks = Hooks(screen=[moderation.screen], before_submit=[moderation.before_submit])
            await moderation.warmup()
            service.image_check = lambda job, pngs: moderation.check_images(job, pngs, nsfw_channel=False)
            checked = await moderation.precheck(params["prompt"], params["negative_prompt"], user_id=0,
                                                guild_id=None, channel_id=None, nsfw_channel=False)
            devices = settings.device_list or await asyncio.to_thread(default_devices)

            # One job: nothing to batch.
            pool = InferencePool(service, engine_factory(settings, registry, batch_max=1), devices[:1])
            service.pool = pool
            origin = Origin(user_id=0, user_name="cli", prompt_verdict=checked)
            await service.submit(command="imagine", params=params, origin=origin)
            await pool.start()
            try:
                failure = await delivery.done
            finally:
                await pool.stop()
                await service.drain()
            if failure is not None:
                raise UserFacingError(failure)
            return delivery.written
        finally:
            await engine.dispose()
