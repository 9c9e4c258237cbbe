"""Who may do what with a job, and where: one rule for /show, /cancel, result buttons and reactions.

One bot serves many servers, and each must be a sealed room. A member may use (show, reroll, vary,
upscale, animate, rerun) their own jobs anywhere the content is allowed, and others' jobs only in
the server where they were made; a job made in an age-restricted channel goes only to an
age-restricted channel. A member may cancel their own jobs; a moderator (Manage Server) may cancel
the jobs of the server where they are one, and only those. No discord import: callers describe the
place with a `Place`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import NotHere, NotYours
from db.models import Job


@dataclass(frozen=True, slots=True)
class Place:
    """Who is asking, and where: the member, their server (None in a DM), the channel's kind, and
    whether they hold Manage Server in that server."""

    user_id: int
    guild_id: int | None
    nsfw_channel: bool = False
    manages_guild: bool = False


def made_age_restricted(job: Job) -> bool:
    """Whether the job was made in an age-restricted channel (its parameters record the channel's kind)."""
    return bool((job.params or {}).get("nsfw_channel"))


def check_use(job: Job, place: Place) -> None:
    """Raise unless ``place.user_id`` may show or build on ``job`` in ``place``."""
    if job.user_id != place.user_id and (job.guild_id is None or job.guild_id != place.guild_id):
        raise NotYours(f"Job #{job.id} belongs to someone else and was made in another server or a direct "
                       "message; only its owner can use it here.")
    if job.user_id != place.user_id and (job.params or {}).get("private"):
        # Made with private results (/settings private): nobody else saw it, and a job number is easy to guess.
        raise NotYours(f"Job #{job.id} is private to the member who made it.")
    if made_age_restricted(job) and not place.nsfw_channel:
        raise NotHere(f"Job #{job.id} was made in an age-restricted channel; it can only be shown or "
                      "built on in an age-restricted channel.")


def check_cancel(job: Job, place: Place) -> None:
    """Raise unless ``place.user_id`` may cancel ``job``: their own, or as a moderator of its server."""
    if job.user_id == place.user_id:
        return
    if place.manages_guild and job.guild_id is not None and job.guild_id == place.guild_id:
        return
    raise NotYours(f"Job #{job.id} belongs to someone else.")
