"""Why a job failed, in one table: each failure class, the sentence its member reads, and how loud its log line is.

Exceptions from a pipeline carry paths, model internals and library detail: that goes to the log (with
the job's id), never to the member. The job service, the local CLI (``atelier generate``, ``atelier models
pull``) and remote workers' errors all go through `classify`, so a member, an operator reading the log
and an admin at a terminal are told the same reason. Rows are tried in order; the first that matches
wins; a new failure class is a new row. Exceptions the bot cannot import without torch (CUDA out of
memory, the model cache's load errors) are matched by class name, which also matches errors a remote
worker reported by name (``kinds``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from inference import hub
from inference.types import JobCancelled

log = logging.getLogger(__name__)

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-~ ]+){2,}[\\/]?")
MAX_SHOWN = 300


@dataclass(frozen=True)
class FailureClass:
    kind: str
    matches: Callable[[BaseException], bool]
    level: int  # of the log line that records the failure (with its detail)
    message: Callable[[BaseException], str]  # what the member (and the CLI) is told


def _names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__} | set(getattr(error, "kinds", None) or [])


def _named(*names: str) -> Callable[[BaseException], bool]:
    return lambda error: bool(_names(error) & set(names))


def _a(*classes: type[BaseException]) -> Callable[[BaseException], bool]:
    return lambda error: isinstance(error, classes)


def scrub(text: str) -> str:
    """A member-facing exception text without filesystem paths, on one line, shortened."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _PATH.sub("…", first)[:MAX_SHOWN]


def _model(error: BaseException) -> str:
    return str(getattr(error, "name", None) or getattr(error, "model", None) or "The model")


def _download_message(error: BaseException) -> str:
    reason = error.member_message if isinstance(error, hub.ModelUnavailable) else "The model could not be downloaded."
    return f"{reason} The job's credits were refunded."


def _shown(prefix: str) -> Callable[[BaseException], str]:
    """For errors whose text was written for members (an option a runner refused): shown, paths scrubbed."""
    return lambda error: f"{prefix} {scrub(str(error))}".strip() if scrub(str(error)) else UNEXPECTED_MESSAGE


def _in_text(*fragments: str) -> Callable[[BaseException], bool]:
    return lambda error: any(fragment in str(error).lower() for fragment in fragments)


UNEXPECTED_MESSAGE = "The job failed on the GPU. It has been logged; try again or change the options."

FAILURES: tuple[FailureClass, ...] = (
    FailureClass("withheld", _named("Withheld"), logging.INFO, lambda e: str(e)),
    FailureClass("cancelled", _a(JobCancelled), logging.INFO,
                 lambda e: f"Canceled at step {getattr(e, 'step', 0)}."),
    FailureClass("gated", _named("GatedModel"), logging.ERROR, _download_message),
    FailureClass("network", _named("HubUnreachable"), logging.WARNING, _download_message),
    FailureClass("downloading", _named("ModelUnavailable"), logging.ERROR, _download_message),
    # After the cache freed other models, retried and fell back to CPU offload (inference/recovery.py).
    FailureClass("out of memory", _named("OutOfMemory"), logging.ERROR,
                 lambda e: "This job does not fit in the GPU's memory, even after the bot freed the other models and "
                           "retried in low-memory mode. Try a smaller size or fewer images; your credits were refunded."),
    FailureClass("out of memory", lambda e: "OutOfMemoryError" in _names(e) or "out of memory" in str(e).lower(),
                 logging.ERROR,
                 lambda e: "The GPU ran out of memory for this job, even after freeing what it could. Try a "
                           "smaller size or fewer images; the job's credits were refunded."),
    FailureClass("timed out", lambda e: bool(_names(e) & {"JobTimedOut", "TimeoutError"}), logging.WARNING,
                 lambda e: "The job took too long and was stopped. The job's credits were refunded; try fewer "
                           "steps, a smaller size or fewer images."),
    FailureClass("bad checkpoint", _named("ModelLoadError", "SafetensorError", "CheckpointError"), logging.ERROR,
                 lambda e: f"{_model(e)} could not be loaded: its files are missing, damaged or not a model Atelier "
                           "can load. The bot's owner can read why in the log; the job's credits were refunded."),
    FailureClass("not loadable", _a(OSError), logging.ERROR,
                 lambda e: "The model could not be loaded. The bot's owner can read why in the log; try another "
                           "model or try again later."),
    FailureClass("invalid", _named("RequestRefused", "UserFacingError"), logging.WARNING,
                 _shown("The job could not run:")),
    FailureClass("worker lost", lambda e: "RemoteJobError" in _names(e) and _in_text(
                     "lost track of the remote job", "vanished from redis")(e), logging.WARNING,
                 lambda e: "The GPU worker running this job stopped answering. Try again in a minute."),
)
UNEXPECTED = FailureClass("unexpected", lambda e: True, logging.ERROR, lambda e: UNEXPECTED_MESSAGE)


def classify(error: BaseException) -> FailureClass:
    """The first row of FAILURES that matches ``error``; UNEXPECTED (logged with its traceback) if none does."""
    return next((row for row in FAILURES if row.matches(error)), UNEXPECTED)


def log_failure(error: BaseException, *, job_id: int | None = None) -> FailureClass:
    """One log line with the failure's detail, at its class's level (the owner reads why here)."""
    failure = classify(error)
    log.log(failure.level, "job %s failed (%s): %s: %s", job_id, failure.kind, type(error).__name__, error,
            exc_info=error if failure is UNEXPECTED else None,
            extra={"job_id": job_id} if job_id is not None else None)
    return failure


def member_message(error: BaseException) -> str:
    """One sentence a member can act on: never a stack trace, a path or the raw exception text."""
    return classify(error).message(error)
