"""What the bot (inference/remote.py) and a remote worker (inference/remote_worker.py) exchange over
Redis: the saq queue both use, the job's key and function name, results as JSON, and failures that
keep their error family.

Why `AtelierQueue` exists: saq's `job.update()` reads the status and then writes the whole job
back, so a progress write racing with the worker's own finish (or with an abort, or with a sweep
that gave the job to another worker) put a finished job back to "active" for ever. Here every
write from a run is a compare-and-set on (status, attempts) in one Lua script.
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from saq.job import Job, Status
from saq.queue.redis import RedisQueue

from inference.types import GeneratedImage, GenerationResult, OutOfMemory

log = logging.getLogger(__name__)

FUNCTION = "atelier.generate"

# Write the job only while this run still owns it: status active and the same attempt number.
_TOUCH = """
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local job = cjson.decode(stored)
if (job.status or 'new') ~= 'active' or (job.attempts or 0) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[1], 'active')
return 1
"""

# Finish the job only if this run (or the sweeper acting for it) still owns it.
_FINISH = """
local stored = redis.call('GET', KEYS[1])
if stored then
  local job = cjson.decode(stored)
  local status = job.status or 'new'
  if (job.attempts or 0) ~= tonumber(ARGV[2]) or (status ~= 'active' and status ~= 'aborting') then return 0 end
end
redis.call('LREM', KEYS[2], 1, KEYS[1])
redis.call('ZREM', KEYS[3], KEYS[1])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('SETEX', KEYS[1], ttl, ARGV[1])
elseif ttl == 0 then redis.call('SET', KEYS[1], ARGV[1])
else redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', KEYS[1], ARGV[4])
return 1
"""


class RemoteJobError(Exception):
    """A job failed on a remote worker; ``kinds`` are the class names of the original error."""

    def __init__(self, message: str, kinds: list[str] | None = None) -> None:
        super().__init__(message)
        self.kinds = kinds or []


def remote_error(message: str, kinds: list[str]) -> Exception:
    # Keep the error family so the job service can word it (ValueError, OSError) as it would locally.
    if OutOfMemory.__name__ in kinds:
        return OutOfMemory(message)
    for base in (ValueError, OSError):
        if base.__name__ in kinds:
            return type(f"Remote{base.__name__}", (RemoteJobError, base), {})(message, kinds)
    return RemoteJobError(message, kinds)


def encode_result(result: GenerationResult) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return {
        "job_id": result.job_id, "run_seconds": result.run_seconds, "parameters": result.parameters,
        "grid_png": b64(result.grid_png) if result.grid_png is not None else None,
        "images": [{"png": b64(i.png), "seed": i.seed, "width": i.width, "height": i.height, "mime": i.mime}
                   for i in result.images],
        "notes": list(result.notes),
    }


def decode_result(data: dict[str, Any]) -> GenerationResult:
    images = [GeneratedImage(base64.b64decode(i["png"]), i["seed"], i["width"], i["height"], i.get("mime", "image/png"))
              for i in data["images"]]
    grid = base64.b64decode(data["grid_png"]) if data.get("grid_png") else None
    return GenerationResult(data["job_id"], images, grid, data["run_seconds"], data.get("parameters", ""),
                            list(data.get("notes", [])))


class AtelierQueue(RedisQueue):
    """saq's Redis queue with owner-checked writes (see the module docstring) and a configurable
    sweep period (saq locks sweeps for 60 s by default), so a dead worker's job is retried within
    about heartbeat + sweep seconds."""

    def __init__(self, *args: Any, sweep_seconds: int = 10, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sweep_seconds = sweep_seconds
        self._touch = self.redis.register_script(_TOUCH)
        self._owned_finish = self.redis.register_script(_FINISH)

    async def sweep(self, lock: int = 60, abort: float = 5.0) -> list[str]:
        return await super().sweep(lock=max(1, self.sweep_seconds - 1), abort=1.0)

    async def _update(self, job: Job, status: Status | None = None, **kwargs: Any) -> None:
        if status is not None:  # saq's worker marking a dequeued job active
            await super()._update(job, status=status, **kwargs)
            return
        job.status = Status.ACTIVE
        if not await self._touch(keys=[job.id], args=[self.serialize(job), job.attempts]):
            log.debug("job %s is no longer this run's (aborted, finished or swept): update dropped", job.key)

    async def _finish(self, job: Job, status: Status, *, result: Any = None, error: str | None = None) -> None:
        done = await self._owned_finish(
            keys=[job.id, self._active, self._incomplete],
            args=[self.serialize(job), job.attempts, job.ttl, status.value])
        if not done:
            log.info("job %s belongs to another run now: this run's %s was dropped", job.key, status.value)


def job_key(job_id: int) -> str:
    return f"atelier-job-{job_id}"
