"""/describe: an image -> a job for the registry's captioning model (and its Danbooru tagger), and
the four prompts read back from the finished job's file (inference/runners/caption.py writes them,
one a line, as its ``parameters`` text), which is what the prompt buttons use after a restart."""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from bot.errors import InvalidOption
from bot.params.attachments import InputImage, encode_for_job
from inference.limits import DESCRIBE_PROMPTS, SEED_LIMIT

if TYPE_CHECKING:
    from inference.models import ModelRegistry, ModelSpec

# The described image is kept at most this size (the captioner reads 384 px, the tagger 448).
DESCRIBE_SIDE = 1024
ANIME_MODES = ("auto", "on", "off")


def captioner(registry: ModelRegistry) -> ModelSpec:
    for spec in registry.specs():
        if spec.kind == "caption":
            return spec
    raise InvalidOption("/describe is not set up on this bot (no captioning model is installed); "
                        "ask its owner to add one to models.toml.")


def tagger(registry: ModelRegistry, caption: ModelSpec) -> str | None:
    """The tagger the captioner names (``tagger = "NAME"``), else the registry's first, else none."""
    named = caption.extra.get("tagger")
    if isinstance(named, str) and named in registry and registry.get(named).kind == "tagger":
        return named
    return next((spec.name for spec in registry.specs() if spec.kind == "tagger"), None)


def check_anime(mode: str | None) -> str:
    if mode is None:
        return "auto"
    if mode not in ANIME_MODES:
        raise InvalidOption(f"`anime` must be one of {', '.join(ANIME_MODES)}; you gave {mode!r}.")
    return mode


async def describe_params(registry: ModelRegistry, image: InputImage, anime: str) -> dict[str, Any]:
    spec = captioner(registry)
    named_tagger = tagger(registry, spec)
    if anime == "on" and named_tagger is None:
        raise InvalidOption("`anime: on` needs a Danbooru tagger and none is installed on this bot; "
                            "choose auto or off.")
    fitted = await asyncio.to_thread(ImageOps.contain, image.image, (DESCRIBE_SIDE, DESCRIBE_SIDE),
                                     Image.Resampling.LANCZOS)
    return {"model": spec.name, "prompt": f"Describe {image.filename[:100]}", "negative_prompt": "",
            "task": "describe", "width": fitted.width, "height": fitted.height, "steps": 1, "guidance": 0.0,
            "seed": secrets.randbelow(SEED_LIMIT), "count": 1,
            "init_image": await asyncio.to_thread(encode_for_job, fitted),
            "extra": {"tagger": named_tagger, "anime": anime}, "source": {"attachment": image.filename[:100]}}


def prompts_of(png: bytes) -> list[str]:
    """The prompts a finished /describe job wrote into its file (empty when it has none)."""
    from inference.media import read_parameters

    text = read_parameters(png) or ""
    return [line.strip() for line in text.split("\n") if line.strip()][:DESCRIBE_PROMPTS]


def prompt_at(png: bytes, index: int, job_id: int) -> str:
    prompts = prompts_of(png)
    if not 0 <= index < len(prompts):
        raise InvalidOption(f"Job #{job_id} has no prompt {index + 1}.")
    return prompts[index]
