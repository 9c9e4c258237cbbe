"""Write the README's example images (docs/examples/) with the tiny random-weight test models.

    .venv/bin/python scripts/readme_examples.py [--out docs/examples]

Each example goes through the path the bot takes for that command, minus Discord: the bot-side
option checks (``JobService.prepare_imagine``, ``bot/params/anime.py``, ``bot/params/pose.py``,
``bot/params/images.py``, ``bot/params/animate.py``, ``bot/params/attachments.py``), a job in a throwaway SQLite
database, the inference pool and engine, and the stored outputs the delivery would post. Only the
last step differs: the file is written to disk, shrunk where needed so the README stays light.

The models have random weights, so every picture is structured noise: the examples show the shape
of each command's output (sizes, grid layout, skeleton beside the image, frame count), not what the
real models draw. Seeds are fixed, so a rerun on the same library versions writes the same files,
except vary.png and the canvas edits (zoom-out.png, pan-right.png, region.png): they draw a new
random seed, as their buttons do.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.params import animate, anime, attachments, canvas  # noqa: E402
from bot.params import images as studio  # noqa: E402
from bot.params import pose as pose_jobs  # noqa: E402
from bot.services.derived import DerivedJobs  # noqa: E402
from bot.services.jobs import ImagineOptions, JobService, Origin, Ticket  # noqa: E402
from db import migrate  # noqa: E402
from db.engine import create_engine, create_sessionmaker  # noqa: E402
from db.models import Job, Output  # noqa: E402
from inference.media import encode_png, read_parameters  # noqa: E402
from inference.pool import InferencePool  # noqa: E402
from inference.video import decode_frames, encode_gif, sniff_mime  # noqa: E402

# The longest side an example keeps; bigger results are shown downscaled (the caption says so).
MAX_SIDE = 256
ORIGIN = Origin(user_id=1, user_name="readme")


class Collect:
    """A Delivery that keeps each finished job's outputs instead of posting them."""

    def __init__(self) -> None:
        self.done: dict[int, asyncio.Future[list[Output]]] = {}

    def future(self, job_id: int) -> asyncio.Future[list[Output]]:
        return self.done.setdefault(job_id, asyncio.get_running_loop().create_future())

    async def show_queued(self, job: Job, position: int, total: int, eta_seconds: float | None) -> int | None:
        return None

    async def show_progress(self, job: Job, step: int, total: int) -> None:
        return None

    async def deliver(self, job: Job, outputs: list[Output]) -> int | None:
        self.future(job.id or 0).set_result(outputs)  # type: ignore[arg-type]
        return None

    async def deliver_failure(self, job: Job, message: str) -> None:
        self.future(job.id or 0).set_exception(RuntimeError(f"job #{job.id} failed: {message}"))


def shown(outputs: list[Output]) -> Output:
    """What the delivery posts: the grid (or image beside skeleton) when there is one, else image 0."""
    return next((o for o in outputs if o.index == -1), None) or next(o for o in outputs if o.index == 0)


def shrink(data: bytes) -> bytes:
    """A PNG no larger than MAX_SIDE on its longest side, keeping its A1111 parameters."""
    with Image.open(io.BytesIO(data)) as opened:
        image = opened.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return encode_png(image, read_parameters(data) or "")


def video_as_gif(data: bytes) -> tuple[bytes, int, float]:
    """The delivered MP4 (or GIF) as a looping GIF a README can show: (gif, frames, fps)."""
    frames, fps = decode_frames(data)
    return encode_gif(frames, round(fps)), len(frames), fps


async def make_examples(models: Path, out: Path, only: set[str] | None = None) -> list[str]:
    from inference.engine import Engine
    from inference.models import ModelRegistry

    registry = ModelRegistry.load(models)
    written: list[str] = []
    with tempfile.TemporaryDirectory(prefix="atelier-readme-") as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp}/examples.db")
        await migrate.upgrade(engine)
        service = JobService(create_sessionmaker(engine), registry, progress_interval=60)
        delivery = Collect()
        service.delivery = delivery
        pool = InferencePool(service, lambda device: Engine(registry, device), ["cpu"])
        service.pool = pool
        derived = DerivedJobs(service)
        await pool.start()

        async def run(ticket: Ticket) -> tuple[Job, list[Output]]:
            outputs = await asyncio.wait_for(delivery.future(ticket.job.id or 0), timeout=600)
            return ticket.job, outputs

        async def submit(command: str, params: dict[str, Any]) -> tuple[Job, list[Output]]:
            return await run(await service.submit(command=command, params=params, origin=ORIGIN))

        def save(name: str, data: bytes) -> None:
            if only and name not in only:
                return
            (out / name).write_bytes(data)
            written.append(name)
            print(f"{name}: {len(data):,} bytes", flush=True)

        try:
            # /imagine prompt:"a lighthouse at dusk" seed:7
            job, outputs = await submit("imagine", service.prepare_imagine(
                ImagineOptions(prompt="a lighthouse at dusk, oil painting", seed=7)))
            single = job
            save("imagine.png", shrink(shown(outputs).data))

            # /imagine count:4: the 2x2 grid
            _, outputs = await submit("imagine", service.prepare_imagine(
                ImagineOptions(prompt="a lighthouse at dusk, oil painting", seed=7, count=4)))
            save("imagine-grid.png", shrink(shown(outputs).data))

            # Vary (Strong) on the single result: image-to-image from it at 0.7, new seed
            _, outputs = await run(await derived.variation(job_id=single.id or 0, index=0, strength=studio.STRONG,
                                                           origin=ORIGIN))
            save("vary.png", shrink(shown(outputs).data))

            # /anime (tags reordered, quality tags added, Animagine's negative)
            _, outputs = await submit("anime", anime.prepare(
                service, prompt="night sky, hatsune miku, 1girl, vocaloid, smile", negative=None, aspect="16:9",
                seed=11, count=1))
            save("anime.png", shrink(shown(outputs).data))

            # /pose pose:waving: the delivered image has the skeleton on its right
            _, outputs = await submit("pose", await pose_jobs.prepare(
                service, prompt="a knight in silver armour", pose="waving", reference=None, model=None,
                aspect="2:3", seed=21, strength=None))
            save("pose.png", shrink(shown(outputs).data))

            # /upscale scale:x4 on a 96x96 attachment (a crop of the /imagine result)
            with Image.open(io.BytesIO(shown(await _outputs(service, single.id or 0)).data)) as first:
                crop = first.convert("RGB").crop((0, 0, 96, 96))
            buffer = io.BytesIO()
            crop.save(buffer, format="PNG")
            loaded = attachments.decode(buffer.getvalue(), filename="crop.png")
            _, outputs = await submit("upscale", await studio.upscale_attachment(registry, loaded, 4, None))
            save("upscale-input.png", buffer.getvalue())
            save("upscale.png", shown(outputs).data)

            # /animate frames:6 fps:6 on the /imagine result (as the Animate button does, with options)
            with Image.open(io.BytesIO(shown(await _outputs(service, single.id or 0)).data)) as first:
                still = attachments.InputImage(first.convert("RGB"), "imagine.png", "PNG")
            _, outputs = await submit("animate", await animate.animate_attachment(
                registry, still, frames=6, fps=6, motion=127, seed=4))
            video = shown(outputs).data
            gif, frames, fps = video_as_gif(video)
            print(f"animate: delivered {sniff_mime(video)}, {frames} frames at {fps:g} fps", flush=True)
            save("animate.gif", gif)

            # Canvas edits on the /imagine result: Zoom Out 2x, ➡️, and Vary (Region) on cells 5 and 6
            # (the menu's preview beside the result).
            _, outputs = await run(await derived.canvas(job_id=single.id or 0, index=0, op="zoom2", origin=ORIGIN))
            save("zoom-out.png", shrink(shown(outputs).data))
            _, outputs = await run(await derived.canvas(job_id=single.id or 0, index=0, op="right", origin=ORIGIN))
            save("pan-right.png", shrink(shown(outputs).data))
            first = shown(await _outputs(service, single.id or 0)).data
            save("region-menu.png", shrink(canvas.region_preview(first, [4, 5])))
            _, outputs = await run(await derived.region(job_id=single.id or 0, index=0, cells=[4, 5],
                                                        prompt="a lighthouse at dusk, a red door", origin=ORIGIN))
            save("region.png", shrink(shown(outputs).data))

            # /imagine hires:2 (a 1024 px result from the 512 px model), and tile:True with its 2x2 preview
            _, outputs = await submit("imagine", service.prepare_imagine(
                ImagineOptions(prompt="a lighthouse at dusk, oil painting", seed=7, hires=2.0)))
            save("hires.png", shrink(shown(outputs).data))
            _, outputs = await submit("imagine", service.prepare_imagine(
                ImagineOptions(prompt="mossy cobblestones, top view", seed=9, tile=True)))
            save("tile.png", shrink(canvas.tile_preview(shown(outputs).data)))
        finally:
            await pool.stop()
            await service.drain()
            await engine.dispose()
    return written


async def _outputs(service: JobService, job_id: int) -> list[Output]:
    from db.repositories import jobs as jobs_repo

    async with service.sessions() as session:
        return list(await jobs_repo.get_outputs(session, job_id=job_id))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "examples")
    parser.add_argument("--models", type=Path, help="a tiny models.toml already written (default: build one)")
    parser.add_argument("--only", nargs="+", metavar="FILE", help="write only these files (e.g. zoom-out.png)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atelier-tiny-") as tmp:
        from inference.testing import make_tiny

        models = args.models or make_tiny(Path(tmp))
        written = asyncio.run(make_examples(models, args.out, set(args.only or ())))
    total = sum((args.out / name).stat().st_size for name in written)
    print(f"{len(written)} files, {total:,} bytes in {args.out}")


if __name__ == "__main__":
    main()
