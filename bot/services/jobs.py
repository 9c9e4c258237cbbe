"""JobService: validation -> moderation -> database -> pool, and pool events -> database -> delivery.

No discord import here: the service speaks in jobs and outputs, and a `Delivery` (implemented in
bot/ui/delivery.py) turns them into Discord messages. The database is the queue, so what the service
accepted survives a restart and is delivered exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from PIL import Image
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import InvalidOption, NotHere, QueueFull, UnknownJob
from bot.services import failures
from bot.services.access import Place, check_cancel
from bot.services.acks import AckGate
from bot.services.inputs import fill_inputs, split_inputs
from db import queue as job_queue
from db.engine import begin_urgent
from db.models import Job, JobStatus, Output
from db.repositories import access as access_repo
from db.repositories import jobs as jobs_repo
from db.repositories import users as users_repo
from inference import lora as loras
from inference.limits import MAX_GUIDANCE, MAX_LORA_WEIGHT, MIN_LORA_WEIGHT, SEED_LIMIT
from inference.models import (
    ASPECTS,
    TEXT_TO_IMAGE_KINDS,
    ModelRegistry,
    ModelSpec,
    UnknownAspect,
    UnknownModel,
)
from inference.types import (
    GeneratedImage,
    GenerationRequest,
    GenerationResult,
    JobCancelled,
    Progress,
)

log = logging.getLogger(__name__)

MAX_PROMPT = 2000
MAX_LORAS = 3
# A1111's prompt syntax for extra networks: <lora:name> or <lora:name:weight> (<lyco:...> too).
_LORA_TAG = re.compile(r"<(?:lora|lyco):([^:<>]+)(?::([^:<>]*))?(?::[^<>]*)?>", re.IGNORECASE)
# Every HEARTBEAT_SECONDS a process marks its running jobs alive; a running job of another process
# with no sign of life for STALE_AFTER is taken to be orphaned (that process died) and re-queued.
HEARTBEAT_SECONDS = 20.0
STALE_AFTER = timedelta(seconds=90)
# The same sweep retries what failed on the way: a delivery Discord refused, the recording of a
# job's end that hit a database error. Each is given up after this many tries (logged).
MAX_RETRIES = 10
MAX_NEGATIVE = 1000


class Delivery(Protocol):
    """Shows a job's life to its member. Implemented over Discord in bot/ui/delivery.py."""

    async def show_queued(self, job: Job, position: int, total: int, eta_seconds: float | None, *,
                          paused: bool = False) -> int | None:
        """Show the queue position (``paused``: the job's server paused its queue); returns the id
        of the job's message when known."""

    async def show_progress(self, job: Job, step: int, total: int) -> None: ...

    # Optional: ``async show_loading(job, model, done_bytes, total_bytes)``, the job's model downloading
    # for its first use ("Loading sdxl for the first time: 2.1 / 6.9 GB").

    async def deliver(self, job: Job, outputs: list[Output]) -> int | None:
        """Post the result; returns the id of the message that now carries it."""

    async def deliver_failure(self, job: Job, message: str) -> None: ...


class JobListener(Protocol):
    """Hooks other features attach to a job's life (quotas, moderation records, metrics).

    Each runs inside the transaction that made the change, so what it writes commits or rolls back
    with it. Every method is optional; before_submit may raise a UserFacingError to refuse the job.
    ``screen(params, origin)`` runs before the job's write transaction opens (for slow work) and
    may return the parameters to store instead (e.g. with a safety negative prompt added), so the
    new row is written once rather than inserted and then updated.
    """

    async def before_submit(self, session: AsyncSession, job: Job, origin: Origin) -> None: ...

    async def on_delivered(self, session: AsyncSession, job: Job) -> None: ...

    async def on_ended(self, session: AsyncSession, job: Job) -> None:
        """The job ended without a result: failed or canceled (job.status says which)."""


class PoolLike(Protocol):
    def wake(self) -> None: ...

    def cancel(self, job_id: int) -> None: ...

    @property
    def size(self) -> int: ...

    @property
    def busy(self) -> int: ...


@dataclass(slots=True)
class Origin:
    """Who asked, where, and how to answer them (also after a restart)."""

    user_id: int
    user_name: str = ""
    guild_id: int | None = None
    channel_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    interaction_at: datetime | None = None
    upload_limit: int | None = None
    nsfw_channel: bool = False
    # A channel message already posted for this job (reaction-triggered jobs have no interaction).
    message_id: int | None = None


@dataclass(slots=True)
class ImagineOptions:
    prompt: str
    negative: str | None = None
    model: str | None = None
    aspect: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    count: int = 1
    # A LoRA name from the bot's LoRA folder and its weight (default loras.DEFAULT_WEIGHT).
    lora: str | None = None
    lora_weight: float | None = None
    # That folder (settings.lora_dir); None: LoRAs are off and naming one is refused.
    lora_dir: Path | None = None
    # "fast": the model's distilled sibling (its registry entry's `fast`), else half the steps.
    quality: str | None = None


@dataclass(slots=True)
class Ticket:
    job: Job
    position: int
    total: int
    eta_seconds: float | None
    # The job's server paused its queue (/admin pause): it starts when its admins resume.
    paused: bool = False


def starts_in(per_job: float | None, position: int, running: int, workers: int) -> float | None:
    """Seconds until the job at 1-based ``position`` in the queue starts, or None before the model
    has a run time: the jobs ahead of it and those running now, shared by ``workers`` devices."""
    if per_job is None:
        return None
    return per_job * (position - 1 + min(running, workers)) / max(workers, 1)


@dataclass
class _Live:
    job: Job
    last_progress: float = 0.0
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    # The job's result or error when recording it failed (a database error): the sweep retries.
    outcome: GenerationResult | BaseException | None = None
    tries: int = 0
    loading_shown: bool = False


class JobService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], registry: ModelRegistry, *,
                 progress_interval: float = 1.5, max_queued_per_user: int = 10, max_queue: int = 500,
                 clock: Callable[[], float] = time.monotonic,
                 reads: async_sessionmaker[AsyncSession] | None = None, owner: str = "main",
                 dm_allowed: bool = True, sweep_seconds: float = HEARTBEAT_SECONDS) -> None:
        self.sessions = sessions
        # Read-only lookups (never wait behind a writer on SQLite; see db/engine.py).
        self.reads = reads or sessions
        self.registry = registry
        self.progress_interval = progress_interval
        self.max_queued_per_user = max_queued_per_user
        self.max_queue = max_queue
        # Whether jobs may be made in direct messages (ATELIER_DM): a DM has no server, so no
        # server's moderators, bans or allowances watch it.
        self.dm_allowed = dm_allowed
        self.delivery: Delivery | None = None
        self.pool: PoolLike | None = None
        # worker name -> the models loaded on its device (the embedded pool's), for the claim's tie-break.
        self.resident: Callable[[str], Collection[str]] | None = None
        self.listeners: list[Any] = []
        # Scores finished images; returns why they must not be posted, or None (see bot/services/moderation.py).
        self.image_check: Callable[[Job, list[bytes]], Awaitable[str | None]] | None = None
        self._clock = clock
        self._live: dict[int, _Live] = {}
        self._background: set[asyncio.Task[Any]] = set()
        # Lets pending acknowledgements go first under a burst (bot/services/acks.py); the bot sets it.
        self.acks: AckGate | None = None
        # This process's name among the bot processes sharing the database (Settings.instance): the
        # prefix of its workers' names, so recovery and the heartbeat know which jobs are its own.
        self.owner = owner
        # How often the sweep runs (heartbeat, retries, recovery of stuck jobs); see sweep().
        self.sweep_seconds = sweep_seconds
        self._delivering: set[int] = set()
        self._delivery_tries: dict[int, int] = {}
        # Set when a delivery failed: only then does the sweep look for undelivered jobs.
        self._redeliver = False

    # ----- validation (pure, fast: runs before the interaction is deferred) -----

    def prepare_imagine(self, options: ImagineOptions) -> dict[str, Any]:
        """Check every option against the model's limits; return request parameters (no job id)."""
        # A1111's <lora:name:weight> typed in the prompt is applied like the `lora` option, or refused:
        # left in the text it would be drawn from as words and recorded as if it had been applied.
        prompt, typed_loras = prompt_loras((options.prompt or "").strip())
        if not prompt:
            raise InvalidOption("The prompt is empty: describe what you want to see.")
        if len(prompt) > MAX_PROMPT:
            raise InvalidOption(f"The prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}.")
        negative = (options.negative or "").strip()
        if len(negative) > MAX_NEGATIVE:
            raise InvalidOption(f"The negative prompt is {len(negative)} characters; the limit is {MAX_NEGATIVE}.")
        spec = self.model_spec(options.model)
        spec, fast_steps = self._quality(spec, options)
        try:
            width, height = spec.size_for_aspect(options.aspect or "1:1")
        except UnknownAspect:
            raise InvalidOption(f"Unknown aspect {options.aspect!r}; choose one of {', '.join(ASPECTS)}.") from None
        steps = spec.steps if options.steps is None else options.steps
        steps = fast_steps or steps
        if not 1 <= steps <= spec.max_steps:
            raise InvalidOption(f"Steps must be 1-{spec.max_steps} for {spec.name}; you asked for {steps}.")
        guidance = spec.guidance if options.guidance is None else options.guidance
        if not 0.0 <= guidance <= MAX_GUIDANCE:
            raise InvalidOption(f"Guidance must be between 0 and {MAX_GUIDANCE:g}; you asked for {guidance:g}.")
        if not 1 <= options.count <= spec.max_count:
            raise InvalidOption(f"Count must be 1-{spec.max_count} for {spec.name}; you asked for {options.count}.")
        seed = options.seed
        if seed is None or seed < 0:
            seed = secrets.randbelow(SEED_LIMIT)
        elif seed >= SEED_LIMIT:
            raise InvalidOption(f"Seed must be between 0 and {SEED_LIMIT - 1}; you gave {seed}.")
        params: dict[str, Any] = {
            "model": spec.name, "prompt": prompt, "negative_prompt": negative, "width": width, "height": height,
            "steps": steps, "guidance": float(guidance), "seed": seed, "count": options.count,
            "scheduler": spec.scheduler, "aspect": options.aspect or "1:1",
        }
        if options.quality == "fast":
            params["quality"] = "fast"
        chosen = _lora_choice(options, spec)
        for tag, name, weight in typed_loras:
            if any(found == name for found, _ in chosen):
                raise InvalidOption(f"`{tag}` names a LoRA this job already uses; name each LoRA once.")
            chosen += _checked_lora(name, weight, options.lora_dir, spec, typed=tag)
        if len(chosen) > MAX_LORAS:
            raise InvalidOption(f"A job takes at most {MAX_LORAS} LoRAs; this one names {len(chosen)}.")
        if chosen:
            params["loras"] = chosen
        return params

    def _quality(self, spec: ModelSpec, options: ImagineOptions) -> tuple[ModelSpec, int | None]:
        """``quality: fast``: the model's distilled sibling at its own steps and guidance where the
        registry names one (``fast = "sdxl-lightning"``), else this model at half its steps."""
        if options.quality in (None, "standard"):
            return spec, None
        if options.quality != "fast":
            raise InvalidOption(f"Unknown quality {options.quality!r}; choose standard or fast.")
        if options.steps is not None:
            raise InvalidOption("`quality: fast` picks its own steps; leave `steps` empty or choose standard.")
        sibling = spec.extra.get("fast")
        if sibling:
            fast = self.model_spec(str(sibling))
            return fast, fast.steps
        return spec, max(4, (spec.steps + 1) // 2)

    def model_spec(self, name: str | None, *, kinds: tuple[str, ...] = TEXT_TO_IMAGE_KINDS) -> ModelSpec:
        """The named model (or the default) among those of `kinds`; the error lists only those."""
        valid = [spec.name for spec in self.registry.specs() if spec.kind in kinds]
        if not name:
            default = self.registry.default
            if default.kind in kinds:
                return default
            if not valid:
                raise InvalidOption("No model of that kind is installed; ask the bot's owner.")
            return self.registry.get(valid[0])
        try:
            spec = self.registry.get(name)
        except UnknownModel:
            spec = None
        if spec is None or spec.kind not in kinds:
            raise InvalidOption(f"Unknown model {name!r}; choose one of: {', '.join(valid)}.")
        return spec

    # ----- submission -----

    async def precheck(self, params: dict[str, Any], origin: Origin, *, budget: float = 0.3) -> None:
        """Fast read-only checks (e.g. quota) a command runs before it acknowledges, so refusals stay private.

        Bounded by `budget` seconds: under a burst the acknowledgement matters more, and the same
        rules are enforced again, atomically, when the job is submitted."""
        self.check_place(origin)
        checks = [c for c in (getattr(listener, "before_acknowledge", None) for listener in self.listeners) if c]
        if not checks:
            return
        try:
            async with asyncio.timeout(budget):
                for check in checks:
                    await check(params, origin)
        except TimeoutError:
            log.info("pre-acknowledgement checks took over %.1f s; they run again at submission", budget)

    def check_place(self, origin: Origin) -> None:
        """Refuse work where this bot does none: direct messages when ATELIER_DM is off."""
        if origin.guild_id is None and not self.dm_allowed:
            raise NotHere("This bot creates images in servers only, not in direct messages. "
                          "Use the command in a server you share with it.")

    async def submit(self, *, command: str, params: dict[str, Any], origin: Origin,
                     parent_job_id: int | None = None) -> Ticket:
        self.check_place(origin)
        # Acknowledgements first (bot/services/acks.py), unless the devices have nothing to do: then this job
        # is stored and started at once rather than after a burst's other commands are answered.
        if self.acks is not None and (self.pool is None or self.pool.busy > 0):
            await self.acks.quiet()
        for listener in self.listeners:  # slow checks (moderation's models) before the write lock
            screen = getattr(listener, "screen", None)
            if screen is not None:
                params = await screen(params, origin) or params
        params, new_inputs, copied_inputs = await split_inputs(params)
        async with self.sessions.begin() as session:
            await users_repo.ensure_user(session, user_id=origin.user_id, name=origin.user_name)
            mine, everyone = await jobs_repo.active_counts(session, user_id=origin.user_id)
            if mine >= self.max_queued_per_user:
                raise QueueFull(f"You already have {mine} jobs waiting; the limit is {self.max_queued_per_user}. "
                                "Wait for one to finish or cancel one.")
            if everyone >= self.max_queue:
                raise QueueFull(f"The queue is full ({everyone} jobs). Try again in a few minutes.")
            params = {**params, "nsfw_channel": origin.nsfw_channel}
            job = await jobs_repo.create_job(session, job=Job(
                command=command, user_id=origin.user_id, guild_id=origin.guild_id, channel_id=origin.channel_id,
                application_id=origin.application_id, interaction_token=origin.interaction_token,
                interaction_at=origin.interaction_at, upload_limit=origin.upload_limit,
                message_id=origin.message_id, parent_job_id=parent_job_id, model=params["model"], prompt=params["prompt"],
                seed=params["seed"], params=params,
            ))
            if new_inputs or copied_inputs:
                refs = await jobs_repo.add_inputs(session, job_id=job.id, inputs=new_inputs) if new_inputs else {}
                if copied_inputs:
                    refs = await jobs_repo.copy_inputs(session, job_id=job.id, refs=copied_inputs)
                job.params = {**job.params, "inputs": refs}
            await self._notify("before_submit", session, job, origin)
        # Read after the commit: in a burst of commands the next member's submission need not wait
        # for this one's place in line to be worked out. The worker is woken after it, so the place
        # is one in the queue, not a job already running.
        async with self.reads() as session:
            position, total = await job_queue.queue_position(session, job=job)
            per_job, running = await jobs_repo.run_times(session, model=job.model)
            paused = await access_repo.is_paused(session, guild_id=job.guild_id)
        if self.pool is not None:
            self.pool.wake()
        eta = None if paused else starts_in(per_job, position, running, self.workers)
        return Ticket(job, position, total, eta, paused)

    @property
    def workers(self) -> int:
        """Devices taking this process's jobs (at least one, for estimates)."""
        return max(self.pool.size if self.pool is not None else 1, 1)

    async def reroll(self, *, job_id: int, origin: Origin) -> Ticket:
        """Run a finished job again with a new seed, charged to whoever asked."""
        async with self.reads() as session:
            parent = await jobs_repo.get_job(session, job_id=job_id)
        if parent is None:
            raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
        params = dict(parent.params)
        params["seed"] = secrets.randbelow(SEED_LIMIT)
        if params["model"] not in self.registry.names():
            raise InvalidOption(f"The model {params['model']!r} of job #{job_id} is no longer installed.")
        return await self.submit(command=parent.command, params=params, origin=origin, parent_job_id=parent.id)

    async def pause_guild(self, guild_id: int, *, by: int | None = None) -> bool:
        """Hold the server's queued jobs (running ones finish); other servers' jobs go on. False if
        it was paused already. Stored, so every process sharing the database honours it."""
        async with self.sessions.begin() as session:
            return await access_repo.pause_guild(session, guild_id=guild_id, by=by)

    async def resume_guild(self, guild_id: int) -> bool:
        """Let the server's queued jobs start again; False if it was not paused."""
        async with self.sessions.begin() as session:
            resumed = await access_repo.resume_guild(session, guild_id=guild_id)
        if resumed and self.pool is not None:
            self.pool.wake()
        return resumed

    async def guild_paused(self, guild_id: int | None) -> bool:
        async with self.reads() as session:
            return await access_repo.is_paused(session, guild_id=guild_id)

    async def job_for_message(self, message_id: int) -> Job | None:
        async with self.reads() as session:
            return await jobs_repo.get_job_by_message(session, message_id=message_id)

    async def get_job(self, job_id: int) -> Job | None:
        async with self.reads() as session:
            return await jobs_repo.get_job(session, job_id=job_id)

    async def attach_message(self, job_id: int, message_id: int, channel_id: int | None = None) -> None:
        async with self.sessions.begin() as session:
            await jobs_repo.set_message(session, job_id=job_id, message_id=message_id, channel_id=channel_id)

    async def cancel(self, *, job_id: int, user_id: int, is_admin: bool = False, guild_id: int | None = None) -> str:
        """Cancel a job for its owner, or for a moderator (``is_admin``: Manage Server in
        ``guild_id``) of the server it was made in; another server's moderator gets NotYours."""
        async with self.sessions.begin() as session:
            job = await jobs_repo.get_job(session, job_id=job_id)
            if job is None:
                raise UnknownJob(f"There is no job #{job_id}.")
            check_cancel(job, Place(user_id, guild_id, manages_guild=is_admin))
            previous = await jobs_repo.cancel_job(session, job_id=job_id)
            if previous == JobStatus.queued:
                await session.refresh(job)
                await self._notify("on_ended", session, job)
        if previous is None:
            raise InvalidOption(f"Job #{job_id} is already {job.status}.")
        if previous == JobStatus.running and self.pool is not None:
            self.pool.cancel(job_id)
        elif self.delivery is not None:
            await self.delivery.deliver_failure(job, "Canceled before it started.")
        return previous

    # ----- JobSource for the inference pool -----

    async def claim(self, worker: str) -> GenerationRequest | None:
        # The models loaded on the worker's device break ties between jobs equally due (fewer loads).
        prefer = self.resident(worker) if self.resident is not None else ()
        async with begin_urgent(self.sessions) as session:  # a device may be waiting: ahead of submissions
            job = await job_queue.claim_next_job(session, worker=worker, **({"prefer": prefer} if prefer else {}))
        if job is None:
            return None
        # The first progress edit comes a progress interval after the claim: a job done sooner goes
        # from its queue message straight to its result, without an edit nobody would see.
        self._live[job.id] = _Live(job, last_progress=self._clock())
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
            self._live[partner.id] = _Live(partner, last_progress=self._clock())  # type: ignore[index]
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
        # The job as claimed: its prompt, model and ids are all a progress edit needs.
        self._spawn(event.job_id, self.delivery.show_progress(live.job, event.step, event.total))

    async def _loading(self, live: _Live, event: Progress, now: float) -> None:
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
                message = user_message_for(error)
                await jobs_repo.fail_job(session, job_id=job_id, error=message)
            job = await jobs_repo.get_job(session, job_id=job_id)
            if job is not None:
                await session.refresh(job)
                await self._notify("on_ended", session, job)
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
                await self._notify("on_delivered", session, job)
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

    def _mine(self, job: Job) -> bool:
        """Claimed by this process (or by a version that did not name processes)."""
        return job.worker is None or "/" not in job.worker or job.worker.startswith(f"{self.owner}/")

    def _fresh(self, job: Job) -> bool:
        return jobs_repo.last_sign_of_life(job) > datetime.now(UTC) - STALE_AFTER

    async def recover(self) -> tuple[list[int], list[int]]:
        """At start-up: re-queue interrupted jobs once, deliver what finished but never reached Discord.

        Interrupted means run by this process before it stopped, or by another whose heartbeat
        lapsed; jobs other live processes are running (several bot processes on one database) are
        left to them."""
        requeued, failed = await self._requeue(lambda job: not self._mine(job) and self._fresh(job))
        async with self.reads() as session:
            pending = await jobs_repo.undelivered(session)
        if pending:
            log.info("recovery: delivering %s", [j.id for j in pending])
        for job in pending:
            if job.status == JobStatus.completed:
                self._track(self.deliver(job.id))
            else:
                self._track(self._deliver_failure(job, job.error or "The job failed."))
        return requeued, failed

    async def sweep(self) -> tuple[list[int], list[int]]:
        """Periodically: say this process's jobs are alive; retry what failed on the way (recording
        a job's end, a delivery); re-queue this process's running jobs that nothing here runs any
        more (the recording of their end was given up) and other processes' jobs whose heartbeat
        lapsed (a process that died and did not come back)."""
        async with self.sessions.begin() as session:
            await jobs_repo.heartbeat(session, owner=self.owner)
        await self._retry_outcomes()
        requeued, failed = await self._requeue(
            lambda job: self._held(job) if self._mine(job) else self._fresh(job))
        for job_id in failed:
            dead = await self.get_job(job_id)
            if dead is not None and not dead.delivered:
                self._track(self._deliver_failure(dead, dead.error or "The job failed."))
        await self._retry_deliveries()
        return requeued, failed

    def _held(self, job: Job) -> bool:
        """This process still has its running job: a device runs it, its end waits to be recorded,
        or it was claimed so recently that the claim may not be noted yet."""
        if job.id in self._live or job.worker is None or "/" not in job.worker:
            return True
        started = job.started_at or job.created_at
        return jobs_repo.aware(started) > datetime.now(UTC) - timedelta(seconds=self.sweep_seconds)

    async def _retry_outcomes(self) -> None:
        for job_id, live in list(self._live.items()):
            outcome, live.outcome = live.outcome, None
            if outcome is None:
                continue
            live.tries += 1
            if live.tries > MAX_RETRIES:
                log.error("gave up recording the end of job %s; it goes back to the queue", job_id)
                self._forget(job_id)
            elif isinstance(outcome, BaseException):
                await self.failed(job_id, outcome)
            else:
                await self.finished(outcome)

    async def _retry_deliveries(self) -> None:
        """Results and failure notices that did not reach Discord (it refused or was unreachable)
        are posted again, once they are a sweep old (a delivery may still be on its way)."""
        if self.delivery is None or not self._redeliver:
            return
        cutoff = datetime.now(UTC) - timedelta(seconds=self.sweep_seconds)
        async with self.reads() as session:
            pending = await jobs_repo.undelivered(session)
        self._redeliver = False
        for job in pending:
            if (not self._mine(job) or job.finished_at is None
                    or self._delivery_tries.get(job.id, 0) >= MAX_RETRIES):  # type: ignore[arg-type]
                continue
            if job.id in self._delivering or jobs_repo.aware(job.finished_at) > cutoff:
                self._redeliver = True  # look again at the next sweep
                continue
            if job.status == JobStatus.completed:
                self._track(self.deliver(job.id))  # type: ignore[arg-type]
            else:
                self._track(self._deliver_failure(job, job.error or "The job failed."))

    async def heartbeat_forever(self, interval: float | None = None) -> None:
        interval = self.sweep_seconds if interval is None else interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job heartbeat failed")

    async def _requeue(self, alive: Callable[[Job], bool]) -> tuple[list[int], list[int]]:
        async with self.sessions.begin() as session:
            requeued, failed = await jobs_repo.recover_interrupted(session, alive=alive)
            for job_id in failed:
                dead = await jobs_repo.get_job(session, job_id=job_id)
                if dead is not None:
                    await self._notify("on_ended", session, dead)
        if requeued or failed:
            log.info("recovery: requeued %s, failed %s", requeued, failed)
        if requeued and self.pool is not None:
            self.pool.wake()
        return requeued, failed

    async def _notify(self, hook: str, session: AsyncSession, job: Job, *args: Any) -> None:
        for listener in self.listeners:
            method = getattr(listener, hook, None)
            if method is not None:
                await method(session, job, *args)

    def _spawn(self, job_id: int, coro: Awaitable[None]) -> None:
        live = self._live.get(job_id)
        task = self._track(coro)
        if live is not None:
            live.tasks.add(task)
            task.add_done_callback(live.tasks.discard)

    def _track(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background delivery failed", exc_info=task.exception())

    def _forget(self, job_id: int) -> None:
        self._live.pop(job_id, None)

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for deliveries in flight (used at shutdown and by tests)."""
        if self._background:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*list(self._background), return_exceptions=True), timeout)


def _lora_choice(options: ImagineOptions, spec: ModelSpec) -> list[list[Any]]:
    """The job's [[name, weight]] LoRA list, checked against the folder and the model's family.

    The worker checks again (its folder may differ, and it knows the model's exact width); this
    check is what lets a wrong name or family be refused privately, before a job exists."""
    name = (options.lora or "").strip()
    if not name:
        if options.lora_weight is not None:
            raise InvalidOption("You set a LoRA weight but no LoRA; pick one in the `lora` option.")
        return []
    weight = loras.DEFAULT_WEIGHT if options.lora_weight is None else float(options.lora_weight)
    return _checked_lora(name, weight, options.lora_dir, spec)


def _checked_lora(name: str, weight: float, lora_dir: Path | None, spec: ModelSpec, *, typed: str | None = None
                  ) -> list[list[Any]]:
    """[[name, weight]] for a LoRA that exists and fits the model; ``typed``: the prompt tag it came from."""
    where = f"`{typed}` in your prompt: " if typed else ""
    if lora_dir is None:
        raise InvalidOption(f"{where}LoRAs are not available here (the bot's owner has not set ATELIER_LORA_DIR, "
                            "or this command takes none); remove it." if typed else
                            "LoRAs are turned off on this bot (its owner has not set ATELIER_LORA_DIR).")
    if spec.kind not in loras.LORA_KINDS:
        raise InvalidOption(f"{where}{spec.name} does not take LoRAs; choose an SD 1.5 or SDXL model.")
    try:
        found = loras.library(str(lora_dir)).resolve(name)
        loras.check_weight(weight)
        made_for = loras.family_hint(loras.read_header(found.path))
    except loras.LoraError as exc:
        raise InvalidOption(f"{where}{exc}") from None
    except (OSError, ValueError):
        raise InvalidOption(f"LoRA {name!r} is not a readable .safetensors file; tell the bot's owner.") from None
    family = loras.kind_family(spec.kind)
    if made_for is not None and family is not None and made_for != family:
        raise InvalidOption(f"LoRA {name!r} is made for {loras.FAMILY_NAMES[made_for]} models and {spec.name} is "
                            f"{loras.FAMILY_NAMES[family]}; choose a {loras.FAMILY_NAMES[made_for]} model or "
                            "another LoRA.")
    return [[found.name, weight]]


def prompt_loras(prompt: str) -> tuple[str, list[tuple[str, str, float]]]:
    """The prompt without its ``<lora:name:weight>`` tags, and each tag as (tag, name, weight)."""
    found: list[tuple[str, str, float]] = []
    for match in _LORA_TAG.finditer(prompt):
        text = match[2].strip() if match[2] is not None else ""
        try:
            weight = float(text) if text else loras.DEFAULT_WEIGHT
            loras.check_weight(weight)
        except (ValueError, loras.LoraError):
            raise InvalidOption(f"`{match[0]}` in your prompt: the weight must be a number from {MIN_LORA_WEIGHT:g} "
                                f"to {MAX_LORA_WEIGHT:g}.") from None
        found.append((match[0], match[1].strip(), weight))
    stripped = re.sub(r"\s{2,}", " ", _LORA_TAG.sub(" ", prompt)).strip(" ,")
    return (stripped, found) if found else (prompt, [])


_REQUEST_FIELDS = frozenset(f.name for f in dataclasses.fields(GenerationRequest)) - {"job_id"}


def request_from_params(job_id: int, params: dict[str, Any]) -> GenerationRequest:
    """Stored job parameters -> the runner's request. Display-only keys (e.g. aspect) are dropped."""
    return GenerationRequest(job_id=job_id, **{k: v for k, v in params.items() if k in _REQUEST_FIELDS})


def _output(job_id: int, index: int, image: GeneratedImage) -> Output:
    return Output(job_id=job_id, index=index, seed=image.seed, width=image.width, height=image.height, data=image.png,
                  mime=image.mime)


class Withheld(Exception):
    """The result exists but policy forbids posting it here; the message says why."""


def user_message_for(error: BaseException) -> str:
    """Turn a runner failure into one sentence a member can act on (never a stack trace nor a
    path); the table of failure classes and their sentences is bot/services/failures.py."""
    return failures.member_message(error)


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:  # reads the header only
        return image.size
