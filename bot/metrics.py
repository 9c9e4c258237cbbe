"""Prometheus metrics: queue depth per model, wait and run time per command, jobs by outcome, GPU memory.

`Metrics` gives the job service outcome hooks (bot/services/hooks.py) and wraps the pool's job source
(claims, results), so neither the service nor the pools know it exists. Queue depth is read from the
database every few seconds, so every shard process reports the same, whole queue. GPU memory comes
from a callback into inference (bot/ never imports torch). The HTTP endpoint is off unless
ATELIER_METRICS_PORT is set; each Metrics has its own registry, so tests can run several bots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.logs import job_context
from db.models import Job
from db.repositories import jobs as jobs_repo
from inference.pool import JobSource
from inference.types import GenerationRequest, GenerationResult, Progress

log = logging.getLogger(__name__)

# Seconds: from a 1-step turbo image to a long video.
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
RUN_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)


@dataclass
class _Running:
    command: str
    claimed: float  # monotonic


class _GpuCollector(Collector):
    def __init__(self, read: Callable[[], dict[str, dict[str, int]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("atelier_gpu_memory_bytes", "GPU memory per device (allocated, reserved, total)",
                                   labels=["device", "kind"])
        try:
            devices = self.read()
        except Exception:  # a scrape must not fail because a driver call did
            log.exception("could not read GPU memory")
            devices = {}
        for device, kinds in devices.items():
            for kind, value in kinds.items():
                family.add_metric([device, kind], value)
        yield family


class Metrics:
    def __init__(self, *, gpu_memory: Callable[[], dict[str, dict[str, int]]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = CollectorRegistry()
        self.queue_depth = Gauge("atelier_queue_depth", "Jobs waiting for a GPU, per model", ["model"],
                                 registry=self.registry)
        self.wait_seconds = Histogram("atelier_job_wait_seconds", "Submission to start of generation",
                                      ["command"], buckets=WAIT_BUCKETS, registry=self.registry)
        self.run_seconds = Histogram("atelier_job_run_seconds", "Start of generation to result",
                                     ["command"], buckets=RUN_BUCKETS, registry=self.registry)
        self.jobs = Counter("atelier_jobs", "Jobs by how they ended", ["command", "outcome"], registry=self.registry)
        self.in_flight = Gauge("atelier_jobs_running", "Jobs generating now (this process's pool)",
                               registry=self.registry)
        if gpu_memory is not None:
            self.registry.register(_GpuCollector(gpu_memory))
        self._clock = clock
        self._running: dict[int, _Running] = {}
        self._models: set[str] = set()
        self._server: Any = None
        self._refresher: asyncio.Task[None] | None = None

    # ----- job service hooks (bot/services/hooks.py) -----

    async def on_delivered(self, session: AsyncSession, job: Job) -> None:
        self._ended(job, "completed")

    async def on_ended(self, session: AsyncSession, job: Job) -> None:
        self._ended(job, str(job.status))

    def _ended(self, job: Job, outcome: str) -> None:
        self.jobs.labels(job.command, outcome).inc()

    # ----- the pool's side -----

    def source(self, inner: JobSource) -> JobSource:
        """The job source the pool should use: `inner` with claims and results timed."""
        return _MeteredSource(inner, self)

    def claimed(self, job: Job) -> None:
        """Wall-clock wait from the job's row: the shard that took the submission may not be this one."""
        if job.id is None:
            return
        created = job.created_at if job.created_at.tzinfo else job.created_at.replace(tzinfo=UTC)
        self.wait_seconds.labels(job.command).observe(max(0.0, (datetime.now(UTC) - created).total_seconds()))
        self._running[job.id] = _Running(job.command, self._clock())
        self.in_flight.inc()

    def stopped(self, job_id: int) -> None:
        running = self._running.pop(job_id, None)
        if running is not None:
            self.run_seconds.labels(running.command).observe(self._clock() - running.claimed)
            self.in_flight.dec()

    def unclaimed(self, job_id: int) -> None:
        """A job claimed ahead went back to the queue unrun (its wait was observed already)."""
        if self._running.pop(job_id, None) is not None:
            self.in_flight.dec()

    # ----- queue depth -----

    async def refresh_queue(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            counts = await jobs_repo.queued_by_model(session)
        for model in self._models - counts.keys():
            self.queue_depth.labels(model).set(0)
        for model, count in counts.items():
            self.queue_depth.labels(model).set(count)
        self._models |= counts.keys()

    async def _refresh_forever(self, sessions: async_sessionmaker[AsyncSession], interval: float) -> None:
        while True:
            try:
                await self.refresh_queue(sessions)
            except Exception:
                log.exception("could not read the queue depth")
            await asyncio.sleep(interval)

    # ----- exposition -----

    def start(self, sessions: async_sessionmaker[AsyncSession], *, port: int | None, addr: str = "127.0.0.1",
              refresh_seconds: float = 5.0) -> None:
        self._refresher = asyncio.create_task(self._refresh_forever(sessions, refresh_seconds),
                                              name="atelier-metrics-queue")
        if port is not None:
            self._server = start_http_server(port, addr=addr, registry=self.registry)
            log.info("metrics on http://%s:%d/metrics", addr, self.port)

    @property
    def address(self) -> str | None:
        """The address the endpoint listens on (None when it is off)."""
        return self._server[0].server_address[0] if self._server else None

    @property
    def port(self) -> int | None:
        return self._server[0].server_port if self._server else None

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        if self._server is not None:
            server, thread = self._server
            await asyncio.to_thread(server.shutdown)
            server.server_close()
            thread.join(5)
            self._server = None


class _MeteredSource:
    """A JobSource that times what passes through it and names the job in the logs meanwhile."""

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    async def claim(self, worker: str) -> GenerationRequest | None:
        request = await self.inner.claim(worker)
        if request is not None:
            await self._claimed(request)
        return request

    async def claim_partners(self, worker: str, request: GenerationRequest, room: int) -> list[GenerationRequest]:
        partners = list(await self.inner.claim_partners(worker, request, room))
        for partner in partners:
            await self._claimed(partner)
        return partners

    async def _claimed(self, request: GenerationRequest) -> None:
        try:
            running = getattr(self.inner, "running_job", None)
            job = running(request.job_id) if running is not None else None
            if job is None:
                job = await self.inner.get_job(request.job_id)
            if job is not None:
                self.metrics.claimed(job)
        except Exception:  # metrics never stop a job
            log.exception("could not time job %s", request.job_id, extra={"job_id": request.job_id})

    async def release(self, worker: str, job_ids: list[int]) -> None:
        for job_id in job_ids:
            self.metrics.unclaimed(job_id)
        await self.inner.release(worker, job_ids)

    async def progress(self, event: Progress) -> None:
        with job_context(event.job_id):
            await self.inner.progress(event)

    async def finished(self, result: GenerationResult) -> None:
        self.metrics.stopped(result.job_id)
        with job_context(result.job_id):
            await self.inner.finished(result)

    async def failed(self, job_id: int, error: BaseException) -> None:
        self.metrics.stopped(job_id)
        with job_context(job_id):
            await self.inner.failed(job_id, error)
