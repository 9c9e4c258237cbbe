"""Typed errors a member can act on. Services raise them; only the command tree turns them into replies."""

from __future__ import annotations


class UserFacingError(Exception):
    """An error whose message is safe and useful to show the member as is; ``title`` heads the reply.

    A subclass names its title in its header: ``class QueueFull(UserFacingError, title="Queue full")``.
    """

    title = "That didn't work"

    def __init_subclass__(cls, *, title: str | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if title is not None:
            cls.title = title

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidOption(UserFacingError, title="Check your options"): ...
class UnknownJob(UserFacingError, title="Unknown job"): ...
class NotYours(UserFacingError, title="Not yours"): ...
class QueueFull(UserFacingError, title="Queue full"): ...
class Banned(UserFacingError, title="You can't use Atelier here"): ...
class QuotaExceeded(UserFacingError, title="Out of credits"): ...


class SlowDown(UserFacingError, title="Slow down"):
    """A per-member cooldown or per-minute limit (bot/services/rate_limits.py)."""


class NotHere(UserFacingError, title="Not here"):
    """The action is not available in this place (a DM, a server, an ordinary channel)."""


class Refused(UserFacingError, title="Prompt refused"):
    """The moderation layer refused the prompt; carries the category for the reply."""

    def __init__(self, message: str, *, categories: list[str] | None = None, case_id: int | None = None) -> None:
        super().__init__(message)
        self.categories = categories or []
        self.case_id = case_id


class StartupError(Exception):
    """Something the bot needs at start-up does not answer; the message is one line naming the setting
    (with any password hidden), printed instead of a traceback."""
