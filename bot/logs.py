"""Structured logs: every record carries the job it is about, where one is known.

Code that knows the job passes ``extra={"job_id": ...}``; the pool's calls into the job service run
with `job_context`, so whatever the service logs meanwhile names the job without being told.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar("atelier_job_id", default=None)

FORMAT = "%(asctime)s %(levelname)-8s %(name)s%(job)s: %(message)s"


class JobIdFilter(logging.Filter):
    """Sets ``record.job_id`` (None when unknown) and ``record.job`` (" job=N" or "") for formatters."""

    def filter(self, record: logging.LogRecord) -> bool:
        job_id = getattr(record, "job_id", None)
        if job_id is None:
            job_id = current_job.get()
        record.job_id = job_id
        record.job = f" job={job_id}" if job_id is not None else ""
        return True


@contextlib.contextmanager
def job_context(job_id: int) -> Iterator[None]:
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


def install(level: int | str = logging.INFO) -> None:
    """Give the root handlers (made by discord.py's setup_logging or basicConfig) the job-aware format."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    for handler in root.handlers:
        if not any(isinstance(f, JobIdFilter) for f in handler.filters):
            handler.addFilter(JobIdFilter())
        handler.setFormatter(logging.Formatter(FORMAT))
