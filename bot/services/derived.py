"""Jobs made from a finished result: variations (V buttons), upscales (U buttons, 🔍) and
animations (Animate, 🎬). Reads the parent job and its image, refuses what that result can't take,
and submits the child job built by bot/params (images.py, animate.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.errors import InvalidOption, UnknownJob
from bot.params import animate, images
from bot.services.jobs import JobService, Origin, Ticket
from db.models import Job, Output
from db.repositories import jobs as jobs_repo


class DerivedJobs:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    async def variation(self, *, job_id: int, index: int, strength: float, origin: Origin) -> Ticket:
        """Image-to-image from image ``index`` of job ``job_id``, same prompt and options, new seed."""
        parent, output = await self._parent_output(
            job_id, index, lambda job: None if job.command in images.VARIABLE_COMMANDS else
            f"Job #{job_id} is a /{job.command} result; only generated images can be varied.")
        if parent.params.get("model") not in self.jobs.registry.names():
            raise InvalidOption(f"The model {parent.params.get('model')!r} of job #{job_id} is no longer installed.")
        params = await asyncio.to_thread(images.variation, parent.params, output.data, job_id=job_id, index=index,
                                         strength=strength)
        return await self.jobs.submit(command=parent.command, params=params, origin=origin, parent_job_id=job_id)

    async def upscale(self, *, job_id: int, index: int, scale: int, origin: Origin,
                      upscaler: str | None = None) -> Ticket:
        spec = images.upscaler_spec(self.jobs.registry, upscaler)
        parent, output = await self._parent_output(
            job_id, index, lambda job: f"Job #{job_id} is already an upscale." if job.command == "upscale" else None)
        params = await asyncio.to_thread(images.upscale_output, spec, output.data, scale, prompt=parent.prompt,
                                         seed=output.seed, job_id=job_id, index=index)
        return await self.jobs.submit(command="upscale", params=params, origin=origin, parent_job_id=job_id)

    async def animate(self, *, job_id: int, index: int, origin: Origin) -> Ticket:
        """Animate image ``index`` of a finished job with the video model's defaults."""
        spec = animate.video_spec(self.jobs.registry)
        parent, output = await self._parent_output(
            job_id, index, lambda job: None if job.command in animate.ANIMATABLE_COMMANDS else
            f"Job #{job_id} is a /{job.command} result; only images can be animated.")
        params = await asyncio.to_thread(animate.animate_output, spec, output.data, prompt=parent.prompt,
                                         job_id=job_id, index=index)
        return await self.jobs.submit(command="animate", params=params, origin=origin, parent_job_id=job_id)

    async def _parent_output(self, job_id: int, index: int, refuse: Callable[[Job], str | None]) -> tuple[Job, Output]:
        """Job ``job_id`` and its image ``index``. Refuses a deleted job, then whatever ``refuse`` names
        (the kind of result this work does not take), then an image the job does not have."""
        async with self.jobs.reads() as session:
            parent = await jobs_repo.get_job(session, job_id=job_id)
            outputs = await jobs_repo.get_outputs(session, job_id=job_id) if parent is not None else []
        if parent is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
        refusal = refuse(parent)
        if refusal is not None:
            raise InvalidOption(refusal)
        output = next((o for o in outputs if o.index == index), None)
        if output is None:
            raise InvalidOption(f"Job #{job_id} has no image {index + 1}.")
        return parent, output
