"""What one LoRA training run is: its kind, base model family, trigger word and hyper-parameters.

Defaults come by kind (a subject: one person, pet or object; a style: a look across many subjects)
and model family, from the values DreamBooth-LoRA recipes converge on for a handful of images.
Members may move rank, steps and learning rate only within the ranges in inference/limits.py.
Only the standard library: the bot imports this module to check a /train request before queueing.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from inference.limits import TRAIN_LR_RANGE, TRAIN_RANK_RANGE, TRAIN_STEPS_RANGE
from inference.models import RequestRefused

KINDS = ("subject", "style")
FAMILIES = ("sd1", "sdxl")
# The trainer's name and version, written into every LoRA it makes (ss_training_comment, atelier.trainer).
TRAINER = "atelier-lora-trainer"
TRAINER_VERSION = "1"

# Trigger words: one short token-like word, so it reaches the text encoder as the member typed it.
_TRIGGER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]{1,31}$")


class TrainingRefused(RequestRefused):
    """A training request the trainer will not run; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Defaults:
    rank: int
    steps: int
    learning_rate: float
    resolution: int


# (kind, family) -> defaults. Styles need more capacity and steps than one subject; SDXL trains at
# 1024 px and converges in about the same number of steps at the same learning rate.
DEFAULTS: dict[tuple[str, str], Defaults] = {
    ("subject", "sd1"): Defaults(rank=16, steps=800, learning_rate=1e-4, resolution=512),
    ("style", "sd1"): Defaults(rank=32, steps=1200, learning_rate=1e-4, resolution=512),
    ("subject", "sdxl"): Defaults(rank=16, steps=1000, learning_rate=1e-4, resolution=1024),
    ("style", "sdxl"): Defaults(rank=32, steps=1500, learning_rate=1e-4, resolution=1024),
}


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """Everything that decides a run's result: two runs with equal settings and images give equal LoRAs
    (on the same device and dtype)."""

    kind: str
    family: str
    trigger: str
    base_model: str
    rank: int
    steps: int
    learning_rate: float
    resolution: int
    alpha: float | None = None  # LoRA alpha; None means alpha = rank (scale 1)
    seed: int = 0
    batch_size: int = 1
    checkpoint_every: int = 100
    sample_every: int = 200
    sample_steps: int = 20
    buckets: bool = True  # aspect buckets; False: square centre crops

    @property
    def lora_alpha(self) -> float:
        return float(self.alpha if self.alpha is not None else self.rank)

    def replace(self, **changes: object) -> TrainingSettings:
        return dataclasses.replace(self, **changes)


def check_trigger(trigger: str) -> str:
    trigger = trigger.strip()
    if not _TRIGGER.match(trigger):
        raise TrainingRefused("The trigger must be one word of 2-32 letters, digits, _ or - (e.g. `zxq_rosie`): "
                              "a rare word the model does not know yet, which you then put in your prompts.")
    return trigger


def settings_for(kind: str, family: str, *, trigger: str, base_model: str, rank: int | None = None,
                 steps: int | None = None, learning_rate: float | None = None, seed: int = 0) -> TrainingSettings:
    """A member's request made whole: the defaults for its kind and family, the member's own values
    where they gave them (each checked against its range, never silently clamped)."""
    if kind not in KINDS:
        raise TrainingRefused(f"Kind must be one of {', '.join(KINDS)}; you asked for {kind!r}.")
    if family not in FAMILIES:
        raise TrainingRefused(f"{base_model} cannot be trained here: LoRA training takes SD 1.5 and SDXL models.")
    base = DEFAULTS[(kind, family)]
    chosen_rank = _within("rank", base.rank if rank is None else int(rank), TRAIN_RANK_RANGE)
    chosen_steps = _within("steps", base.steps if steps is None else int(steps), TRAIN_STEPS_RANGE)
    chosen_lr = _within("learning rate", base.learning_rate if learning_rate is None else float(learning_rate),
                        TRAIN_LR_RANGE)
    return TrainingSettings(kind=kind, family=family, trigger=check_trigger(trigger), base_model=base_model,
                            rank=chosen_rank, steps=chosen_steps, learning_rate=chosen_lr, resolution=base.resolution,
                            seed=seed, checkpoint_every=min(100, chosen_steps), sample_every=max(100, chosen_steps // 4))


def _within(name: str, value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    if not low <= value <= high:
        raise TrainingRefused(f"The {name} must be {low:g}-{high:g}; you asked for {value:g}.")
    return value
