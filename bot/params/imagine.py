"""The options of /imagine as one value, and what the other builders need from whoever checks them.

/anime, /pose and image-to-image start from the /imagine checks (prompt, model, aspect, steps,
seed, LoRAs) and add their own; the checks live with the job service (`JobService.prepare_imagine`),
which this package reaches only through the `ImagineChecks` protocol, so it imports no service and
no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.params.styles import Style
    from inference.models import ModelRegistry


@dataclass(slots=True)
class ImagineOptions:
    prompt: str
    negative: str | None = None
    model: str | None = None
    aspect: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    count: int = 1
    # A LoRA name from the bot's LoRA folder and its weight (default loras.DEFAULT_WEIGHT).
    lora: str | None = None
    lora_weight: float | None = None
    # That folder (settings.lora_dir); None: LoRAs are off and naming one is refused.
    lora_dir: Path | None = None
    # "fast": the model's distilled sibling (its registry entry's `fast`), else half the steps.
    quality: str | None = None
    # A style's name (bot/params/styles.py): the packaged ones and ``server_styles``, the server's own.
    style: str | None = None
    server_styles: Mapping[str, Style] = field(default_factory=dict)
    # An A1111 sampler name ("DPM++ 2M Karras") or a scheduler name; None: the model's own.
    sampler: str | None = None
    # The second and third LoRAs of the job, from the same folder.
    lora2: str | None = None
    lora2_weight: float | None = None
    lora3: str | None = None
    lora3_weight: float | None = None
    # Owner folders (settings.wildcards_dir, settings.embeddings_dir); None: the feature is off.
    wildcards_dir: Path | None = None
    embeddings_dir: Path | None = None
    # Hires fix: the upscale factor (one of limits.HIRES_FACTORS; None = off) and the second pass's
    # strength (default limits.DEFAULT_HIRES_STRENGTH).
    hires: float | None = None
    hires_strength: float | None = None
    # Seamless tiles: the image wraps around at its edges.
    tile: bool = False


class ImagineChecks(Protocol):
    """The installed models and the /imagine checks against them (the job service provides both)."""

    registry: ModelRegistry

    def prepare_imagine(self, options: ImagineOptions) -> dict[str, Any]: ...
