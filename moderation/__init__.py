"""Prompt and image moderation: pure-Python pieces the bot calls off the event loop.

Entry points: ``check_prompt`` / ``Moderator.check`` for text, ``ImageChecker`` for images,
``Policy`` for a guild's settings and ``Verdict`` for the answer.
"""

from moderation.moderator import Moderator, check_prompt, default_moderator
from moderation.normalize import Normalized, normalize
from moderation.policy import CATEGORIES, Action, Policy, Verdict

__all__ = [
    "CATEGORIES",
    "Action",
    "Moderator",
    "Normalized",
    "Policy",
    "Verdict",
    "check_prompt",
    "default_moderator",
    "normalize",
]
