"""The fixed points of a job's life where other features act, typed, and the values they receive.

A feature (quotas, moderation, metrics) contributes plain async callables; bot/client.py puts them
into one `Hooks`, in the order they run, and hands it to the job service. Nothing is looked up by
name: a hook the wiring does not list does not run.

The points, in a submission's order:

- ``before_acknowledge(params, origin)``: before a command is acknowledged; fast and read-only.
  Raising a UserFacingError refuses the command privately. A courtesy: what it checks is checked
  again at submission.
- ``screen(submission) -> submission``: before the job's write transaction opens, for slow work
  (moderation's models) that must not hold the database's write lock. Returns the submission to
  store, e.g. with a safety negative prompt added and the prompt's verdict, so the row is written once.
- ``before_submit(session, job, submission)``: inside the transaction that writes the job; raising
  a UserFacingError refuses it and rolls back everything written, the hooks' writes included.
- ``on_delivered(session, job)`` and ``on_ended(session, job)``: inside the transaction that
  records the delivery, or the end without a result (failed or canceled; job.status says which).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Job
from moderation import Verdict
from moderation.moderator import RulesScan


@dataclass(frozen=True, slots=True)
class PromptVerdict:
    """Moderation's verdict on one prompt in one place, and whether the semantic layer took part:
    it stands for a later check of the same text in the same place (see ModerationService.screen)."""

    prompt: str
    negative: str
    guild_id: int | None
    nsfw_channel: bool
    verdict: Verdict
    semantic: bool
    # The rule layers' reading behind the verdict: a fuller check of the same text continues from it.
    scan: RulesScan | None = None

    def judged(self, prompt: str, negative: str, guild_id: int | None, nsfw_channel: bool) -> bool:
        return (self.prompt, self.negative, self.guild_id, self.nsfw_channel) == (
            prompt, negative, guild_id, nsfw_channel)


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
    # The verdict of the check made before the command was acknowledged (the command tree's), if any.
    prompt_verdict: PromptVerdict | None = None
    # The member's results are theirs alone (/settings private): ephemeral, or by DM once the token expired.
    private: bool = False


@dataclass(frozen=True, slots=True)
class Submission:
    """A job on its way into the queue: the parameters to store, who asked, and, once a screen
    worked it out, moderation's verdict on its prompt."""

    params: dict[str, Any]
    origin: Origin
    verdict: Verdict | None = None


BeforeAcknowledge = Callable[[dict[str, Any], Origin], Awaitable[None]]
Screen = Callable[[Submission], Awaitable[Submission]]
BeforeSubmit = Callable[[AsyncSession, Job, Submission], Awaitable[None]]
JobEvent = Callable[[AsyncSession, Job], Awaitable[None]]


@dataclass(slots=True)
class Hooks:
    """Each point's hooks, run in list order (see the module docstring for when each runs)."""

    before_acknowledge: list[BeforeAcknowledge] = field(default_factory=list)
    screen: list[Screen] = field(default_factory=list)
    before_submit: list[BeforeSubmit] = field(default_factory=list)
    on_delivered: list[JobEvent] = field(default_factory=list)
    on_ended: list[JobEvent] = field(default_factory=list)


async def notify(hooks: list[JobEvent], session: AsyncSession, job: Job) -> None:
    for hook in hooks:
        await hook(session, job)
