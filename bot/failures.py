"""Why a job failed, in one table: each failure class, the sentence its member reads, and how loud its log line is.

The job service, the local CLI (``atelier generate``, ``atelier models pull``) and remote workers' errors all
go through `classify`, so a member, an operator reading the log and an admin at a terminal are told the
same reason. A new failure class is a new row. Rows are tried in order; the first that matches wins.
Exceptions the bot cannot import without torch (CUDA out of memory, the model cache's load errors) are
matched by class name, which also matches errors a remote worker reported by name (``kinds``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from inference import hub
from inference.types import JobCancelled


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


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _model(error: BaseException) -> str:
    return str(getattr(error, "name", None) or getattr(error, "model", None) or "The model")


def _download_message(error: BaseException) -> str:
    reason = error.member_message if isinstance(error, hub.ModelUnavailable) else "The model could not be downloaded."
    return f"{reason} The job's credits were refunded."


FAILURES: tuple[FailureClass, ...] = (
    FailureClass("withheld", _named("Withheld"), logging.INFO, lambda e: str(e)),
    FailureClass("cancelled", _a(JobCancelled), logging.INFO,
                 lambda e: f"Canceled at step {getattr(e, 'step', 0)}."),
    FailureClass("gated", _named("GatedModel"), logging.ERROR, _download_message),
    FailureClass("network", _named("HubUnreachable"), logging.WARNING, _download_message),
    FailureClass("downloading", _named("ModelUnavailable"), logging.ERROR, _download_message),
    FailureClass("out of memory", lambda e: "OutOfMemoryError" in _names(e) or "out of memory" in str(e).lower(),
                 logging.ERROR,
                 lambda e: "The GPU ran out of memory for this job. Try a smaller size or fewer images."),
    FailureClass("timed out", _a(TimeoutError), logging.WARNING,
                 lambda e: "The job took too long and was stopped. The job's credits were refunded; try fewer "
                           "steps or a smaller size."),
    FailureClass("bad checkpoint", _named("ModelLoadError", "SafetensorError", "CheckpointError"), logging.ERROR,
                 lambda e: f"{_model(e)} could not be loaded: its files are missing, damaged or not a model Atelier "
                           "can load. The bot's owner can read why in the log; the job's credits were refunded."),
    FailureClass("not loadable", lambda e: isinstance(e, OSError) and bool(first_line(e)), logging.ERROR,
                 lambda e: f"The model could not be loaded: {first_line(e)[:300]}"),
    FailureClass("invalid", lambda e: isinstance(e, ValueError) and bool(first_line(e)), logging.WARNING,
                 lambda e: f"The job could not run: {first_line(e)[:300]}"),
)
UNEXPECTED = FailureClass("unexpected", lambda e: True, logging.ERROR,
                          lambda e: f"The job failed ({type(e).__name__}). It has been logged; try again or change "
                                    "the options.")


def classify(error: BaseException) -> FailureClass:
    """The first row of FAILURES that matches ``error``; UNEXPECTED (logged with its traceback) if none does."""
    return next((row for row in FAILURES if row.matches(error)), UNEXPECTED)


def member_message(error: BaseException) -> str:
    """One sentence a member can act on (never a stack trace)."""
    return classify(error).message(error)
