"""A tiny registry and a delivery that records, for driving JobService without Discord."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from bot.services.hooks import Hooks
from bot.services.jobs import JobService
from inference.models import ModelRegistry
from inference.types import GeneratedImage, GenerationResult

TOML = """
default = "fast"
packaged = false
[models.fast]
kind = "sd15"
source = "/nonexistent"
steps = 4
guidance = 7.0
scheduler = "euler"
width = 64
height = 64
max_steps = 50
max_count = 4
"""


def registry(tmp_path) -> ModelRegistry:  # type: ignore[no-untyped-def]
    path = tmp_path / "models.toml"
    path.write_text(TOML)
    return ModelRegistry.load(path)


def png(w: int = 8, h: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "red").save(buf, "PNG")
    return buf.getvalue()


def result_for(job_id: int) -> GenerationResult:
    return GenerationResult(job_id, [GeneratedImage(png(), 1, 8, 8)], None, 0.01)


class RecordingDelivery:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    async def show_queued(self, job, position, total, eta):  # type: ignore[no-untyped-def]
        self.events.append(("queued", job.id))
        return None

    async def show_progress(self, job, step, total):  # type: ignore[no-untyped-def]
        self.events.append(("progress", job.id, step))

    async def deliver(self, job, outputs):  # type: ignore[no-untyped-def]
        self.events.append(("delivered", job.id))
        return None

    async def deliver_failure(self, job, message):  # type: ignore[no-untyped-def]
        self.events.append(("failure", job.id, message))


def service(sessions, tmp_path, **kw: Any) -> JobService:  # type: ignore[no-untyped-def]
    svc = JobService(sessions, registry(tmp_path), max_queued_per_user=kw.pop("max_queued_per_user", 100), **kw)
    svc.delivery = RecordingDelivery()
    return svc


def hooks(*, moderation: Any = None, accounts: Any = None) -> Hooks:
    """The job service's hooks as bot/client.py wires them (moderation first), for those given."""
    wired = Hooks()
    if moderation is not None:
        wired.screen.append(moderation.screen)
        wired.before_submit.append(moderation.before_submit)
    if accounts is not None:
        wired.before_acknowledge.append(accounts.before_acknowledge)
        wired.screen.append(accounts.screen)
        wired.before_submit.append(accounts.before_submit)
        wired.on_delivered.append(accounts.on_delivered)
        wired.on_ended.append(accounts.on_ended)
    return wired
