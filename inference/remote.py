"""GPU workers on other machines: the same engine behind a saq queue on Redis.

The bot keeps the database as the queue (fair order, durability) and a `RemotePool` claims a job
only when a remote device is free, then hands it to saq. `atelier worker` (ATELIER_REDIS_URL in its environment) runs
`inference.remote_worker.run_worker`: one slot (thread + engine) per device, progress written back on the saq job (one
writer per job, which doubles as the heartbeat), cancellation through saq's abort (checked between
steps), and when a worker dies its job is swept and retried on another one. Results (PNG bytes,
base64) live in Redis only for `result_ttl` seconds: the bot stores them in the database.

The wire between the two sides (the saq queue, results, errors) is inference/remote_queue.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError
from saq.job import TERMINAL_STATUSES, Job, Status

from inference.pool import JobSource, Pausable
from inference.remote_queue import (
    FUNCTION,
    AtelierQueue,
    RemoteJobError,
    decode_result,
    job_key,
    remote_error,
)
from inference.types import (
    GenerationRequest,
    JobCancelled,
    Progress,
    run_limit,
)

log = logging.getLogger(__name__)

ABORT_RETRY_SECONDS = 1.0


async def wait_event(event: asyncio.Event, seconds: float) -> None:
    """Wait for the event at most `seconds`. Not `asyncio.wait_for`: on Python 3.11 it can swallow a
    cancellation that arrives as the event is set, and a loop built on it then never stops."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()


# Query parameters of a database or Redis URL that carry a credential.
SECRET_PARAMS = frozenset({"password", "pass", "passwd", "pwd", "sslpassword", "secret", "token", "auth",
                           "username", "user"})


def scrub_query(query: str) -> str:
    """A URL's query string with the value of every credential parameter replaced by ***."""
    return "&".join(f"{key}=***" if eq and key.lower() in SECRET_PARAMS else f"{key}{eq}{value}"
                    for key, eq, value in (pair.partition("=") for pair in query.split("&") if pair))


def redacted(url: str) -> str:
    """A Redis (or database) URL without its credentials, for logs: the user:password@ part goes,
    and so does the value of any query parameter that carries one (``?password=...``)."""
    scheme, sep, rest = url.partition("://")
    rest = rest.rpartition("@")[2]
    address, mark, query = rest.partition("?")
    if mark:
        address = f"{address}?{scrub_query(query)}"
    return f"{scheme}{sep}{address}"


@dataclass
class _InFlight:
    job_id: int
    key: str
    step: int = 0
    loading: list[Any] | None = None
    cancelled: bool = False
    aborted_at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)


class RemotePool(Pausable):
    """Same face as InferencePool, but the work runs on `atelier worker` processes via saq.

    Jobs are claimed from the source only while remote capacity is free (the sum of the devices the
    live workers announced), so the database keeps deciding the order and a restart loses nothing.
    Each job in flight is followed by reading its saq record whenever Redis pub/sub says it changed
    (one subscription for the whole pool, on its own connection) and at least every `poll_interval`.
    """

    def __init__(self, source: JobSource, redis_url: str, *, queue_name: str = "atelier",
                 job_timeout: float | None = None, heartbeat: int = 30, retries: int = 3, result_ttl: int = 120,
                 poll_interval: float = 2.0, name: str = "remote", max_devices_per_worker: int = 16,
                 redis_errors_tolerated: int = 5) -> None:
        self.source = source
        self.redis_url = redis_url
        self.queue_name = queue_name
        self.job_timeout = job_timeout
        self.heartbeat = heartbeat
        self.retries = retries
        self.result_ttl = result_ttl
        self.poll_interval = poll_interval
        self.name = name
        self.max_devices_per_worker = max_devices_per_worker
        # Consecutive Redis errors while following one job before it is given up as lost.
        self.redis_errors_tolerated = redis_errors_tolerated
        self.queue: AtelierQueue | None = None
        self._pubsub: Any = None
        self._wake = asyncio.Event()
        self._resume = asyncio.Event()
        self._resume.set()
        self._in_flight: dict[int, _InFlight] = {}
        self._by_key: dict[str, _InFlight] = {}
        self._capacity = 0
        self._tasks: list[asyncio.Task[None]] = []
        # redis-py sends with asyncio.wait_for, which on Python 3.11 can swallow a task's cancellation;
        # the loops below also check this flag so that stop() always ends them.
        self._stopping = False

    async def start(self) -> None:
        self.queue = AtelierQueue(aioredis.from_url(self.redis_url), name=self.queue_name)
        await self.queue.connect()
        self._pubsub = aioredis.from_url(self.redis_url).pubsub(ignore_subscribe_messages=True)
        await self._pubsub.psubscribe(self.queue.job_id("*"))
        self._tasks = [asyncio.create_task(self._dispatch_forever(), name="atelier-remote-dispatch"),
                       asyncio.create_task(self._listen_forever(), name="atelier-remote-listen")]
        log.info("remote pool started on queue %r at %s", self.queue_name, redacted(self.redis_url))

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: int) -> None:
        """Abort on the worker (between two steps); `_follow` repeats it until the job ends."""
        flight = self._in_flight.get(job_id)
        if flight is not None:
            flight.cancelled = True
            flight.changed.set()

    @property
    def busy(self) -> int:
        return len(self._in_flight)

    @property
    def size(self) -> int:
        return max(self._capacity, 1)

    @property
    def in_flight(self) -> list[int]:
        return list(self._in_flight)

    async def warmup(self, models: list[str]) -> None:
        """Remote workers load their models themselves."""

    async def capacity(self) -> int:
        """Devices announced by live workers (saq worker info, refreshed every few seconds)."""
        assert self.queue is not None
        info = await self.queue.info()
        total = 0
        for worker in info["workers"].values():
            total += self._announced(worker.get("metadata") or {})
        self._capacity = total
        return total

    def _announced(self, metadata: dict[str, Any]) -> int:
        """A worker's device count, capped: whoever can write to Redis could otherwise announce a
        thousand devices and make the bot hand it every queued job at once."""
        try:
            devices = int(metadata.get("devices", 1))
        except (TypeError, ValueError):
            return 1
        if devices > self.max_devices_per_worker:
            log.warning("a remote worker announced %d devices; counting %d", devices, self.max_devices_per_worker)
        return max(1, min(devices, self.max_devices_per_worker))

    async def _listen_forever(self) -> None:
        assert self.queue is not None
        while not self._stopping:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the polls in _follow carry on; redis-py resubscribes on reconnect
                log.warning("remote pool lost its Redis subscription (%s); retrying", exc.__class__.__name__)
                await asyncio.sleep(self.poll_interval)
                continue
            if message is None:
                continue
            channel = message["channel"]
            key = self.queue.job_key_from_id(channel.decode() if isinstance(channel, bytes) else channel)
            flight = self._by_key.get(key)
            if flight is not None:
                flight.changed.set()

    async def _dispatch_forever(self) -> None:
        while not self._stopping:
            await self._resume.wait()
            try:
                dispatched = await self._dispatch_some()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("remote pool could not dispatch")
                dispatched = 0
            if not dispatched:
                self._wake.clear()
                await wait_event(self._wake, self.poll_interval)

    async def _dispatch_some(self) -> int:
        free = await self.capacity() - len(self._in_flight)
        sent = 0
        while free > 0 and self._resume.is_set() and not self._stopping:
            request = await self.source.claim(self.name)
            if request is None:
                break
            await self._send(request)
            free -= 1
            sent += 1
        return sent

    async def _send(self, request: GenerationRequest) -> None:
        assert self.queue is not None
        flight = _InFlight(request.job_id, job_key(request.job_id))
        self._in_flight[request.job_id] = flight
        self._by_key[flight.key] = flight
        job = Job(FUNCTION, kwargs={"request": request.to_dict()}, key=flight.key, timeout=max(1, round(run_limit([request], self.job_timeout))),
                  heartbeat=self.heartbeat, retries=self.retries, ttl=self.result_ttl)
        try:
            if await self.queue.enqueue(job) is None:  # still in Redis (e.g. after a bot restart): follow it
                log.info("job %s is already on the remote queue", request.job_id)
        except BaseException:
            self._forget(flight)
            raise
        flight.task = asyncio.create_task(self._follow(flight), name=f"atelier-remote-{request.job_id}")

    def _forget(self, flight: _InFlight) -> None:
        self._in_flight.pop(flight.job_id, None)
        self._by_key.pop(flight.key, None)

    async def _follow(self, flight: _InFlight) -> None:
        assert self.queue is not None
        job: Job | None = None
        errors = 0
        try:
            while not self._stopping:
                flight.changed.clear()  # before the read, so a change during it is not missed
                try:
                    job = await self.queue.job(flight.key)
                    if job is None or job.status in TERMINAL_STATUSES:
                        break
                    await self._report(flight, job)
                    errors = 0
                except (RedisError, OSError, TimeoutError) as exc:
                    # A Redis restart or a network blip: the job runs on regardless; look again.
                    errors += 1
                    if errors > self.redis_errors_tolerated:
                        raise
                    log.warning("remote job %s: Redis error %d of %d tolerated (%s)", flight.job_id, errors,
                                self.redis_errors_tolerated, exc.__class__.__name__)
                await wait_event(flight.changed, self.poll_interval)
            else:
                return  # stopping: the job stays on the queue and a restarted bot follows it again
            await self._finish(flight, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("lost track of remote job %s", flight.job_id)
            await self.source.failed(flight.job_id, RemoteJobError(f"lost track of the remote job: {exc}"))
        finally:
            self._forget(flight)
            self.wake()

    async def _report(self, flight: _InFlight, job: Job) -> None:
        assert self.queue is not None
        meta = job.meta or {}
        step, total, loading = meta.get("step"), meta.get("total"), meta.get("loading")
        if isinstance(loading, list) and len(loading) == 3 and loading != flight.loading:
            flight.loading = loading
            await self.source.progress(Progress(flight.job_id, 0, 0, str(loading[0]), int(loading[1]), int(loading[2])))
        if isinstance(step, int) and isinstance(total, int) and step > flight.step:
            flight.step = step
            await self.source.progress(Progress(flight.job_id, step, total))
        # An abort can be lost (the worker marks the job active just after it); repeat it until the job ends.
        if flight.cancelled and job.status in (Status.NEW, Status.QUEUED, Status.ACTIVE) \
                and time.monotonic() - flight.aborted_at >= ABORT_RETRY_SECONDS:
            flight.aborted_at = time.monotonic()
            await self.queue.abort(job, error="cancelled")
            flight.changed.set()

    async def _finish(self, flight: _InFlight, job: Job | None) -> None:
        if job is None:
            await self.source.failed(flight.job_id, RemoteJobError("the remote job vanished from Redis"))
        elif job.status == Status.COMPLETE and isinstance(job.result, dict) and "error" in job.result:
            error = job.result["error"]
            await self.source.failed(flight.job_id, remote_error(error.get("message", ""), error.get("kinds", [])))
        elif job.status == Status.COMPLETE:
            await self._finished(flight, job.result)
        elif flight.cancelled:
            await self.source.failed(flight.job_id, JobCancelled(flight.job_id, flight.step))
        else:
            await self.source.failed(flight.job_id, RemoteJobError(f"remote worker failed: {job.error or job.status}"))

    async def _finished(self, flight: _InFlight, data: Any) -> None:
        """Store a remote result only if it is the one dispatched under this job's key: a result
        naming another job (a confused or hostile worker) must not complete that other job."""
        try:
            result = decode_result(data)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("remote job %s returned a malformed result (%s)", flight.job_id, exc.__class__.__name__)
            await self.source.failed(flight.job_id, RemoteJobError("the remote worker returned a malformed result"))
            return
        if result.job_id != flight.job_id:
            log.warning("remote job %s came back as job %r; its result was dropped", flight.job_id, result.job_id)
            await self.source.failed(flight.job_id, RemoteJobError("the remote worker returned another job's result"))
            return
        await self.source.finished(result)

    async def stop(self) -> None:
        self._stopping = True
        self._resume.set()
        self._wake.set()
        tasks = [t for t in [*self._tasks, *(f.task for f in self._in_flight.values())] if t is not None]
        for task in tasks:
            for flight in self._in_flight.values():
                flight.changed.set()
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        self._tasks.clear()
        with contextlib.suppress(Exception):
            if self._pubsub is not None:
                await asyncio.wait_for(self._pubsub.aclose(), 5)
        if self.queue is not None:
            try:
                await asyncio.wait_for(self.queue.disconnect(), 5)
            except TimeoutError:
                log.warning("the Redis connection did not close within 5 s")
