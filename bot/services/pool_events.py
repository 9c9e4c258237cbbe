"""The inference pool's side of the job service: claims, progress, results and failures ->
database -> delivery. The database is the queue, so a result is recorded before it is posted and
is posted exactly once (a delivery that fails is retried by the sweep, recovery.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from typing import Any

from PIL import Image

from bot.services import failures
from bot.services.hooks import notify
from bot.services.inputs import fill_inputs
from bot.services.live import MAX_RETRIES, JobState, LiveJob
from bot.services.training import TRAIN_COMMAND
from db import queue as job_queue
from db.engine import begin_urgent
from db.models import Job, Output
from db.repositories import jobs as jobs_repo
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled, Progress

log = logging.getLogger(__name__)


class Withheld(Exception):
    """The result exists but policy forbids posting it here; the message says why."""


class PoolEvents(JobState):
    """The JobSource the inference pool takes jobs from and reports to (inference/pool.py)."""

    async def claim(self, worker: str) -> GenerationRequest | None:
        # The models loaded on the worker's device go first among jobs nearly as due (db.queue.MODEL_WINDOW).
        prefer = self.resident(worker) if self.resident is not None else ()
        # Training jobs only go to devices allowed to train (worker names are "<process>/<device>#n").
        excluded = () if worker_device(worker) in self.train_devices else (TRAIN_COMMAND,)
        async with begin_urgent(self.sessions) as session:  # a device may be waiting: ahead of submissions
            job = await job_queue.claim_next_job(session, worker=worker, excluded=excluded,
                                                 **({"prefer": prefer} if prefer else {}))
        if job is None:
            return None
        if self.demand is not None and self.resident is not None and job.model not in prefer:
            # A load is coming: where it must make room, the model the fewest queued jobs want goes.
            async with self.reads() as session:
                self.demand(worker, await jobs_repo.queued_by_model(session))
        # The first progress edit comes a progress interval after the claim: a job done sooner goes
        # from its queue message straight to its result, without an edit nobody would see.
        self._live[job.id] = LiveJob(job, last_progress=self._clock())
        request = request_from_params(job.id, job.params)
        if job.params.get("inputs"):  # stored apart (db.models.JobInput); only this job's are read
            async with self.reads() as session:
                stored = await jobs_repo.get_inputs(session, job_id=job.id)
            await asyncio.to_thread(fill_inputs, request, stored)
        return request

    def running_job(self, job_id: int) -> Job | None:
        """The row of a job this process claimed and has not finished, as claimed (no query)."""
        live = self._live.get(job_id)
        return live.job if live is not None else None

    async def release(self, worker: str, job_ids: list[int]) -> None:
        """Jobs ``worker`` claimed ahead but will not run (paused or stopping) go back to the queue."""
        async with self.sessions.begin() as session:
            released = await job_queue.release_claims(session, job_ids=job_ids, worker=worker)
        for job_id in released:
            self._forget(job_id)
        if released:
            log.info("worker %s put jobs %s back in the queue", worker, released)

    async def claim_partners(self, worker: str, request: GenerationRequest, room: int) -> list[GenerationRequest]:
        """Other members' next jobs that can share ``request``'s pipeline call (inference/batching.py)."""
        key = request.batch_key()
        if key is None:
            return []

        def compatible(params: dict[str, Any]) -> bool:
            if params.get("inputs"):  # jobs with an input image never share a call
                return False
            try:
                return request_from_params(0, params).batch_key() == key
            except (TypeError, ValueError):
                return False

        job = self._live.get(request.job_id)
        user_id = job.job.user_id if job is not None else -1
        async with begin_urgent(self.sessions) as session:
            partners = await job_queue.claim_partners(session, worker=worker, job_id=request.job_id, user_id=user_id,
                                                      compatible=compatible, room=room)
        for partner in partners:
            self._live[partner.id] = LiveJob(partner, last_progress=self._clock())  # type: ignore[index]
        return [request_from_params(p.id, p.params) for p in partners]  # type: ignore[arg-type]

    async def progress(self, event: Progress) -> None:
        live = self._live.get(event.job_id)
        if live is None or self.delivery is None:
            return
        now = self._clock()
        if event.loading is not None:
            await self._loading(live, event, now)
            return
        if now - live.last_progress < self.progress_interval or event.step >= event.total:
            return
        live.last_progress = now
        async with self.sessions.begin() as session:
            await jobs_repo.set_progress(session, job_id=event.job_id, step=event.step, total=event.total)
        # A training job's latest sample goes into its progress message (bot/services/training.py).
        sample = await self.sample_of(live.job) if self.sample_of is not None else None
        show_sample = getattr(self.delivery, "show_sample", None)
        if sample is not None and show_sample is not None:
            self._spawn(event.job_id, show_sample(live.job, event.step, event.total, sample))
            return
        # The job as claimed: its prompt, model and ids are all a progress edit needs.
        self._spawn(event.job_id, self.delivery.show_progress(live.job, event.step, event.total))

    async def _loading(self, live: LiveJob, event: Progress, now: float) -> None:
        """A download for the job's model: the first event at once (the member learns why the job waits),
        then at most one every progress interval."""
        show = getattr(self.delivery, "show_loading", None)
        if show is None or (live.loading_shown and now - live.last_progress < self.progress_interval):
            return
        live.loading_shown = True
        live.last_progress = now
        self._spawn(event.job_id, show(live.job, event.loading, event.done_bytes, event.total_bytes))

    async def finished(self, result: GenerationResult) -> None:
        try:
            await self._record_result(result)
        except Exception:
            if not self._keep_outcome(result.job_id, result):
                raise

    async def failed(self, job_id: int, error: BaseException) -> None:
        failures.log_failure(error, job_id=job_id)
        try:
            await self._record_failure(job_id, error)
        except Exception:
            if not self._keep_outcome(job_id, error):
                raise

    def _keep_outcome(self, job_id: int, outcome: GenerationResult | BaseException) -> bool:
        """Recording a job's end failed (the database): keep the outcome for the sweep to retry,
        rather than leave the job `running` until a restart."""
        live = self._live.get(job_id)
        if live is None:
            return False
        live.outcome = outcome
        log.exception("could not record the end of job %s; retrying within %g s", job_id, self.sweep_seconds,
                      extra={"job_id": job_id})
        return True

    async def _record_result(self, result: GenerationResult) -> None:
        if self.image_check is not None:
            job = self.running_job(result.job_id) or await self.get_job(result.job_id)
            if job is not None:
                reason = await self.image_check(job, [img.png for img in result.images])
                if reason is not None:
                    await self.failed(result.job_id, Withheld(reason))
                    return
        outputs = [_output(result.job_id, i, img) for i, img in enumerate(result.images)]
        if result.grid_png is not None:
            first = result.images[0]
            w, h = _png_size(result.grid_png)
            outputs.append(Output(job_id=result.job_id, index=-1, seed=first.seed, width=w, height=h,
                                  data=result.grid_png))
        async with self.sessions.begin() as session:
            if result.notes:  # e.g. part of a long prompt was dropped: the embed's Notice field says so
                job = await jobs_repo.get_job(session, job_id=result.job_id)
                await jobs_repo.set_notice(session, job_id=result.job_id, notice="\n".join(
                    filter(None, [job.notice if job is not None else None, *result.notes])))
            stored = await jobs_repo.complete_job(session, job_id=result.job_id, outputs=outputs,
                                                  run_seconds=result.run_seconds)
        if stored is not None:  # the row and outputs just written go along: nothing is read back
            self._track(self.deliver(result.job_id, outputs=sorted(outputs, key=lambda o: o.index), job=stored))
        self._forget(result.job_id)

    async def _record_failure(self, job_id: int, error: BaseException) -> None:
        async with self.sessions.begin() as session:
            if isinstance(error, JobCancelled):
                await jobs_repo.mark_canceled(session, job_id=job_id)
                message = f"Canceled at step {error.step}."
            else:
                message = failures.member_message(error)
                await jobs_repo.fail_job(session, job_id=job_id, error=message)
            job = await jobs_repo.get_job(session, job_id=job_id)
            if job is not None:
                await session.refresh(job)
                await notify(self.hooks.on_ended, session, job)
        self._forget(job_id)
        if job is not None and self.delivery is not None:
            self._track(self._deliver_failure(job, message))

    # ----- delivery -----

    async def deliver(self, job_id: int, *, outputs: list[Output] | None = None, job: Job | None = None) -> None:
        """Post a finished job's result once; it stays undelivered (and is retried) if posting fails.

        ``outputs`` and ``job``: the job's stored outputs and its row as the transaction that
        completed it left them, when the caller has them (read from the database if not)."""
        if self.delivery is None:
            return
        if job is None or outputs is None:
            async with self.reads() as session:
                job = await jobs_repo.get_job(session, job_id=job_id)
                if outputs is None:
                    outputs = await jobs_repo.get_outputs(session, job_id=job_id)
        if job is None or job.delivered or job_id in self._delivering:
            return
        self._delivering.add(job_id)
        try:
            try:
                message_id = await self.delivery.deliver(job, outputs)
            except Exception:
                self._delivery_failed(job_id)
                return
            async with self.sessions.begin() as session:
                await jobs_repo.mark_delivered(session, job_id=job_id)
                await notify(self.hooks.on_delivered, session, job)
                if message_id is not None and message_id != job.message_id:
                    await jobs_repo.set_message(session, job_id=job_id, message_id=message_id)
            self._delivery_tries.pop(job_id, None)
        finally:
            self._delivering.discard(job_id)

    def _delivery_failed(self, job_id: int) -> None:
        self._redeliver = True
        tries = self._delivery_tries[job_id] = self._delivery_tries.get(job_id, 0) + 1
        if tries < MAX_RETRIES:
            log.exception("could not deliver job %s (try %d); retrying within %g s", job_id, tries,
                          self.sweep_seconds, extra={"job_id": job_id})
        else:
            log.exception("could not deliver job %s after %d tries; giving up until the next start", job_id,
                          tries, extra={"job_id": job_id})

    async def _deliver_failure(self, job: Job, message: str) -> None:
        assert self.delivery is not None and job.id is not None
        if job.id in self._delivering:
            return
        self._delivering.add(job.id)
        try:
            try:
                await self.delivery.deliver_failure(job, message)
            except Exception:
                self._delivery_failed(job.id)
                return
            async with self.sessions.begin() as session:
                await jobs_repo.mark_delivered(session, job_id=job.id)
            self._delivery_tries.pop(job.id, None)
        finally:
            self._delivering.discard(job.id)


_REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(GenerationRequest)) - {"job_id"}


def worker_device(worker: str) -> str:
    """The device in a worker's name: "main/cuda:0#1" -> "cuda:0"; the remote pool's "main/remote" -> "remote"."""
    device = worker.partition("/")[2]
    return device.rpartition("#")[0] or device


def request_from_params(job_id: int, params: dict[str, Any]) -> GenerationRequest:
    """Stored job parameters -> the runner's request. Display-only keys (e.g. aspect) are dropped."""
    return GenerationRequest(job_id=job_id, **{k: v for k, v in params.items() if k in _REQUEST_FIELDS})


def _output(job_id: int, index: int, image: GeneratedImage) -> Output:
    return Output(job_id=job_id, index=index, seed=image.seed, width=image.width, height=image.height, data=image.png,
                  mime=image.mime)



def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:  # reads the header only
        return image.size

