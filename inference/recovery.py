"""Out-of-memory recovery: what a device worker does before telling a member a job does not fit.

A CUDA out-of-memory error usually means other models fill the device, not that the job is too big:
free the allocator's cache and move every model no job is using to host memory, then retry; then
retry once more with diffusers' model CPU offload (slow, but each module visits the GPU only while
it computes). Only when that fails too does the job fail, with OutOfMemory (its own member message).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from inference import memory
from inference.cache import ModelCache
from inference.types import GenerationRequest, OutOfMemory

log = logging.getLogger(__name__)
T = TypeVar("T")


class _OutOfMemoryAttempt:
    """An attempt that ran out of device memory. Only the error's first line is kept: the exception's
    traceback holds the failed call's tensors, which must be gone before the next attempt."""

    def __init__(self, error: BaseException) -> None:
        self.line = str(error).splitlines()[0] if str(error) else type(error).__name__


def _attempt(attempt: Callable[[], T]) -> T | _OutOfMemoryAttempt:
    try:
        return attempt()
    except Exception as exc:
        if not memory.is_out_of_memory(exc):
            raise
        return _OutOfMemoryAttempt(exc)


def recovering(cache: ModelCache, device: str, request: GenerationRequest, names: list[str],
               attempt: Callable[[], T]) -> T:
    """Run ``attempt``; on a device out-of-memory error, move every model no job is using off the
    device and retry once, then retry with model CPU offload; OutOfMemory only if all of that fails.

    A cancelled or invalid job raises through at once.
    """
    outcome = _attempt(attempt)
    if not isinstance(outcome, _OutOfMemoryAttempt):
        return outcome
    log.warning("job %s ran out of memory on %s; moving %d idle models off the device and retrying",
                request.job_id, device, len(cache.on_device(device) - set(names)))
    cache.free(device)
    outcome = _attempt(attempt)
    if not isinstance(outcome, _OutOfMemoryAttempt):
        return outcome
    log.warning("job %s still ran out of memory on %s; retrying with model CPU offload", request.job_id, device)
    memory.release_cached(device)
    with cache.cpu_offload(device, names):
        outcome = _attempt(attempt)
    if not isinstance(outcome, _OutOfMemoryAttempt):
        return outcome
    log.error("job %s (%s, %dx%d, %d images) does not fit in the memory of %s, even with CPU offload: %s",
              request.job_id, request.model, request.width, request.height, request.count, device, outcome.line)
    memory.release_cached(device)
    raise OutOfMemory(f"{request.model} at {request.width}x{request.height} ({request.count} images) does not "
                      f"fit in the memory of {device}")
