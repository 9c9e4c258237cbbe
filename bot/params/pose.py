"""/pose jobs: text to image in a given pose, through a ControlNet OpenPose model.

The pose comes from one of three places, decided here before any job exists: a named preset
(drawn by bot/params/pose_presets.py at the job's size), an attached OpenPose skeleton, or an attached photo,
which the worker turns into a skeleton when the operator installed a pose detector. Which of the
last two an attachment is, is read from its pixels (``is_skeleton``): the annotator draws on black
in fully saturated colours, which photos, even dark ones, almost never are.

The prompt, seed and aspect are checked by the same code as /imagine (against the ControlNet's base
model), and the job goes through the same job service path, so moderation and quotas apply as they
do there. Reroll, Vary and Upscale work on the result because "pose" is one of the
VARIABLE_COMMANDS; a variation keeps the skeleton (the worker runs ControlNet image-to-image).
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps

from bot.errors import InvalidOption
from bot.params import pose_presets as poses
from bot.params.attachments import InputImage, encode_for_job
from bot.params.images import pick_model, size_for_image
from bot.params.imagine import ImagineChecks, ImagineOptions
from inference.limits import MAX_CONTROL_SCALE, MIN_CONTROL_SCALE
from inference.models import ModelSpec, detector_problem

if TYPE_CHECKING:
    from inference.models import ModelRegistry

DEFAULT_PRESET = "standing"
DEFAULT_STRENGTH = 1.0
# Skeleton detection: share of near-black pixels, and share of the rest that is vividly coloured.
_DARK_LEVEL = 40
_MIN_DARK = 0.7
_MIN_VIVID = 0.7
_MIN_LIT = 0.001


def pose_models(registry: ModelRegistry) -> list[ModelSpec]:
    return [spec for spec in registry.specs() if spec.kind == "controlnet"]


def pose_spec(registry: ModelRegistry, name: str | None) -> ModelSpec:
    return pick_model(pose_models(registry), name, what="pose model",
                      missing="No pose model is installed on this bot; ask its admin to add an OpenPose "
                              "ControlNet to models.toml.")


def check_strength(strength: float | None) -> float:
    if strength is None:
        return DEFAULT_STRENGTH
    if not (math.isfinite(strength) and MIN_CONTROL_SCALE <= strength <= MAX_CONTROL_SCALE):
        raise InvalidOption(f"Strength must be {MIN_CONTROL_SCALE:g}-{MAX_CONTROL_SCALE:g} (how strictly the pose is "
                            f"followed; default {DEFAULT_STRENGTH:g}); you asked for {strength:g}.")
    return float(strength)


def preset_name(pose: str | None) -> str:
    """A preset's name as the member typed it (any case, spaces or dashes); unknown ones are refused."""
    if pose is None:
        return DEFAULT_PRESET
    wanted = " ".join(pose.strip().lower().replace("_", " ").split())
    for name in poses.preset_names():
        if wanted in (name, name.replace("-", " ")):
            return name
    raise InvalidOption(f"Unknown pose {pose[:50]!r}; choose one of {', '.join(poses.preset_names())}, "
                        "or attach a skeleton or photo as `reference`.")


def matching_presets(current: str) -> list[str]:
    current = current.strip().lower()
    return [name for name in poses.preset_names() if current in name]


def is_skeleton(image: Image.Image) -> bool:
    """True for an OpenPose skeleton: mostly black, and what is not black is vividly coloured.

    The annotator's 18 colours each have one channel at 0 (and limbs are the same colours at 60 %),
    so their saturation (max - min) / max is 1; anti-aliasing and JPEG blur them only at the edges.
    """
    small = image.convert("RGB")
    small.thumbnail((128, 128), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.int16)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    lit = high >= _DARK_LEVEL
    share_lit = float(lit.mean())
    if share_lit > 1 - _MIN_DARK or share_lit < _MIN_LIT:
        return False
    saturation = (high[lit] - low[lit]) / high[lit]
    return float((saturation >= 0.5).mean()) >= _MIN_VIVID


def fit_skeleton(image: Image.Image, width: int, height: int) -> Image.Image:
    """A skeleton at the job's size, letterboxed on black so no limb is cropped away."""
    return ImageOps.pad(image.convert("RGB"), (width, height), Image.Resampling.LANCZOS, color=(0, 0, 0))


async def prepare(checks: ImagineChecks, *, prompt: str, pose: str | None, reference: InputImage | None,
                  model: str | None, aspect: str | None, seed: int | None, strength: float | None) -> dict[str, Any]:
    """/pose parameters: the /imagine checks against the base model, then the control image."""
    spec = pose_spec(checks.registry, model)
    scale = check_strength(strength)
    if pose is not None and reference is not None:
        raise InvalidOption("Give either a `pose` preset or a `reference` image, not both.")
    preset = preset_name(pose) if reference is None else None
    assert spec.base is not None  # the registry refuses ControlNet entries without one
    params = checks.prepare_imagine(ImagineOptions(prompt=prompt, model=spec.base, aspect=aspect, seed=seed))
    width, height = params["width"], params["height"]
    if reference is not None and aspect is None:
        width, height = size_for_image(checks.registry.get(spec.base), *reference.size)
    extra: dict[str, Any] = {}
    if preset is not None:
        skeleton = await asyncio.to_thread(lambda: poses.render(preset, width, height).image)
        control = await asyncio.to_thread(encode_for_job, skeleton)
        described: dict[str, Any] = {"preset": preset}
    else:
        assert reference is not None
        if await asyncio.to_thread(is_skeleton, reference.image):
            fitted = await asyncio.to_thread(fit_skeleton, reference.image, width, height)
            described = {"attachment": reference.filename[:100], "kind": "skeleton"}
        else:
            problem = detector_problem(spec)
            if problem is not None:
                raise InvalidOption(f"`{reference.filename[:100]}` looks like a photo, not an OpenPose skeleton. "
                                    + problem)
            fitted = await asyncio.to_thread(ImageOps.fit, reference.image, (width, height), Image.Resampling.LANCZOS)
            extra["pose_source"] = "photo"
            described = {"attachment": reference.filename[:100], "kind": "photo"}
        control = await asyncio.to_thread(encode_for_job, fitted)
    params.update(model=spec.name, task="pose", width=width, height=height, steps=spec.steps,
                  guidance=float(spec.guidance), scheduler=spec.scheduler, control_image=control,
                  control_scale=scale, extra=extra, pose=described)
    if reference is not None and aspect is None:
        params.pop("aspect", None)
    return params
