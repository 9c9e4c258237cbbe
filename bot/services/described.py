"""The prompts of a finished /describe job, for its buttons: read from the job's stored file, so a
button works after a restart, and only from a completed /describe job."""

from __future__ import annotations

import asyncio

from bot.errors import InvalidOption, UnknownJob
from bot.params import describe
from bot.services.jobs import JobService
from db.models import JobStatus
from db.repositories import jobs as jobs_repo


class DescribedPrompts:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    async def prompt(self, *, job_id: int, index: int) -> str:
        async with self.jobs.reads() as session:
            job = await jobs_repo.get_job(session, job_id=job_id)
            outputs = await jobs_repo.get_outputs(session, job_id=job_id) if job is not None else []
        if job is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
        if job.command != "describe":
            raise InvalidOption(f"Job #{job_id} is a /{job.command} result, not a /describe one.")
        if job.status != JobStatus.completed or not outputs:
            raise InvalidOption(f"Job #{job_id} has no prompts yet.")
        return await asyncio.to_thread(describe.prompt_at, outputs[0].data, index, job_id)
