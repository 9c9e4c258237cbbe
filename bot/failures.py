"""What a member is told when their job fails: one row per failure class, in one table.

Exceptions from a pipeline carry paths, model internals and library detail: that goes to the log
(with the job's id). The member gets the message of the first row that matches, a sentence that
says what happened and what they can do. Rows match on exception class names (the whole MRO, so a
row can name a base class) and on lower-case fragments of the exception's text, which also works
for a remote worker's failure (it arrives as RemoteJobError carrying the original class names).
New failure classes are new rows: nothing else needs to change.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FailureClass:
    """A kind of failure and the member's message for it.

    ``kinds``: exception class names (any class in the error's MRO, or a remote error's reported
    names). ``fragments``: lower-case text that identifies it in the exception's message.
    ``shows_text``: the exception's own message was written for members (e.g. an option a runner
    refused) and is appended to the message, with paths scrubbed."""

    name: str
    message: str
    kinds: frozenset[str] = frozenset()
    fragments: tuple[str, ...] = ()
    shows_text: bool = False


# First match wins: specific classes before general ones.
FAILURE_CLASSES: tuple[FailureClass, ...] = (
    FailureClass("withheld", "", kinds=frozenset({"Withheld"}), shows_text=True),
    FailureClass("timed_out", "The job took too long and was stopped. Try fewer steps, a smaller size or fewer images.",
                 kinds=frozenset({"JobTimedOut"})),
    FailureClass("out_of_memory", "The GPU ran out of memory for this job. Try a smaller size or fewer images.",
                 kinds=frozenset({"OutOfMemoryError"}), fragments=("out of memory",)),
    FailureClass("invalid_options", "The job could not run:",
                 kinds=frozenset({"InvalidOption", "UserFacingError"}), shows_text=True),
    FailureClass("model_load", "The model could not be loaded. The bot's owner can see why in the log; "
                 "try another model or try again later.", kinds=frozenset({"ModelLoadError", "OSError"})),
    FailureClass("worker_lost", "The GPU worker running this job stopped answering. Try again in a minute.",
                 kinds=frozenset({"RemoteJobError"}), fragments=("lost track of the remote job", "vanished from redis")),
    FailureClass("failed", "The job failed on the GPU. It has been logged; try again or change the options."),
)

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-~ ]+){2,}[\\/]?")
MAX_SHOWN = 300


def _kinds(error: BaseException) -> set[str]:
    names = {cls.__name__ for cls in type(error).__mro__}
    names.update(getattr(error, "kinds", None) or ())
    return names


def classify(error: BaseException) -> FailureClass:
    """The first failure class that matches ``error`` (the last row matches everything)."""
    kinds = _kinds(error)
    text = str(error).lower()
    for failure in FAILURE_CLASSES:
        if kinds & failure.kinds or any(fragment in text for fragment in failure.fragments):
            return failure
    return FAILURE_CLASSES[-1]


def scrub(text: str) -> str:
    """A member-facing exception text without filesystem paths, on one line, shortened."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return _PATH.sub("…", first)[:MAX_SHOWN]


def member_message(error: BaseException, *, job_id: int | None = None) -> str:
    """One safe sentence for the member; the raw exception goes to the log only."""
    failure = classify(error)
    if failure.name != "withheld":
        log.warning("job %s failed (%s): %s: %s", job_id, failure.name, type(error).__name__, error,
                    extra={"job_id": job_id} if job_id is not None else None)
    if not failure.shows_text:
        return failure.message
    shown = scrub(str(error))
    if not shown:
        return FAILURE_CLASSES[-1].message
    return f"{failure.message} {shown}".strip()
