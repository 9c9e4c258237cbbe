"""A guild's moderation policy and the verdict the moderator returns.

Both are plain dataclasses with dict round-trips so the db layer can store them as JSON; nothing
here knows about Discord or SQL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

CATEGORIES: tuple[str, ...] = (
    "sexual", "minors", "gore", "copyright", "living-artist", "real-person", "trademark",
)
# Most severe first: decides which category a verdict's reason talks about.
SEVERITY: dict[str, int] = {c: i for i, c in enumerate(
    ("minors", "sexual", "gore", "real-person", "copyright", "living-artist", "trademark"))}
# Categories an age-restricted channel of an opted-in guild allows.
NSFW_CATEGORIES = frozenset({"sexual", "gore"})
LAYERS = ("rules", "learned", "semantic", "combination", "guild-terms", "image")

# Appended to the negative prompt where policy asks for it (ordinary channels by default).
# Not "child" or "minor": that would erase the children from "a mother with 3 kids".
SAFETY_NEGATIVE = "nsfw, nude, naked, nudity, explicit, sexual, gore, blood"


class Action(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"

    @property
    def rank(self) -> int:
        return ("allow", "warn", "block").index(self.value)


def _default_actions() -> dict[str, Action]:
    return {
        "sexual": Action.BLOCK,
        "minors": Action.BLOCK,
        "gore": Action.BLOCK,
        "real-person": Action.BLOCK,
        "copyright": Action.WARN,
        "living-artist": Action.WARN,
        "trademark": Action.WARN,
    }


@dataclass
class Policy:
    """Per-guild settings. ``minors`` is always block: no setting changes that."""

    actions: dict[str, Action] = field(default_factory=_default_actions)
    nsfw_opt_in: bool = False
    extra_terms: dict[str, list[str]] = field(default_factory=dict)
    image_threshold: float = 0.7
    safety_negative: bool = True

    def __post_init__(self) -> None:
        for cat in self.actions:
            if cat not in CATEGORIES:
                raise ValueError(f"unknown moderation category {cat!r}; expected one of {CATEGORIES}")
        for cat in self.extra_terms:
            if cat not in CATEGORIES:
                raise ValueError(f"unknown moderation category {cat!r}; expected one of {CATEGORIES}")
        merged = _default_actions()
        merged.update({k: Action(v) for k, v in self.actions.items()})
        merged["minors"] = Action.BLOCK
        self.actions = merged
        if not 0.0 < self.image_threshold <= 1.0:
            raise ValueError(f"image_threshold must be in (0, 1], got {self.image_threshold}")

    def action_for(self, category: str, *, nsfw_channel: bool) -> Action:
        if category == "minors":
            return Action.BLOCK
        if category in NSFW_CATEGORIES and nsfw_channel and self.nsfw_opt_in:
            return Action.ALLOW
        return self.actions[category]

    def negative_prompt_addition(self, *, nsfw_channel: bool) -> str:
        """The safety negative prompt to append, or "" where this guild and channel don't want one."""
        if not self.safety_negative or (nsfw_channel and self.nsfw_opt_in):
            return ""
        return SAFETY_NEGATIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "actions": {k: v.value for k, v in self.actions.items()},
            "nsfw_opt_in": self.nsfw_opt_in,
            "extra_terms": {k: list(v) for k, v in self.extra_terms.items()},
            "image_threshold": self.image_threshold,
            "safety_negative": self.safety_negative,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Policy:
        return cls(
            actions={k: Action(v) for k, v in data.get("actions", {}).items()},
            nsfw_opt_in=bool(data.get("nsfw_opt_in", False)),
            extra_terms={k: [str(t) for t in v] for k, v in data.get("extra_terms", {}).items()},
            image_threshold=float(data.get("image_threshold", 0.7)),
            safety_negative=bool(data.get("safety_negative", True)),
        )


DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class Verdict:
    """What to do with a prompt or image, and why, in words a user can act on."""

    action: Action
    categories: list[str]
    reason: str
    layer: str | None
    score: float | None = None
    normalized: str = ""
    matched: list[str] = field(default_factory=list)
    report: bool = False

    @property
    def allowed(self) -> bool:
        return self.action is not Action.BLOCK

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "categories": list(self.categories),
            "reason": self.reason,
            "layer": self.layer,
            "score": self.score,
            "normalized": self.normalized,
            "matched": list(self.matched),
            "report": self.report,
        }
