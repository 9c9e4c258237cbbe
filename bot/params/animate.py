"""Animate jobs: a still (an attachment or a finished result) into a short video with Stable Video Diffusion.

The still travels in the job's parameters like an img2img input (lossless WebP, base64), sized to
the video model's pixel budget at the still's aspect. Frames, fps and motion are checked here
against the model's limits, so a member hears at once rather than when a worker claims the job.
"""

from __future__ import annotations

import asyncio
import io
import secrets
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from bot.errors import InvalidOption
from bot.params.attachments import InputImage, encode_for_job
from bot.params.images import VARIABLE_COMMANDS, pick_model, size_for_image
from inference.limits import (
    DEFAULT_FPS,
    DEFAULT_MOTION,
    FPS_RANGE,
    MIN_FRAMES,
    MOTION_RANGE,
    SEED_LIMIT,
    frame_limits,
)
from inference.models import ModelSpec

if TYPE_CHECKING:
    from inference.models import ModelRegistry

VIDEO_MIMES = ("video/mp4", "image/gif")
# Results that Animate / 🎬 take. Upscales too: U1-U4 is how one image of a grid becomes a result of
# its own, and the video model fits any still to its own pixel budget (about 1 MP) anyway. Edits
# (/edit and the canvas edits) are stills like any other.
ANIMATABLE_COMMANDS = (*VARIABLE_COMMANDS, "upscale", "edit")


def video_models(registry: ModelRegistry) -> list[ModelSpec]:
    return [spec for spec in registry.specs() if spec.kind == "svd"]


def video_spec(registry: ModelRegistry, name: str | None = None) -> ModelSpec:
    return pick_model(video_models(registry), name, what="video model",
                      missing="No video model is installed on this bot; ask its admin to add Stable Video "
                              "Diffusion to models.toml.")


def check_options(spec: ModelSpec, frames: int | None, fps: int | None, motion: int | None) -> tuple[int, int, int]:
    default_frames, max_frames = frame_limits(spec)
    frames = default_frames if frames is None else frames
    if not MIN_FRAMES <= frames <= max_frames:
        raise InvalidOption(f"Frames must be {MIN_FRAMES}-{max_frames} for {spec.name}; you asked for {frames}.")
    fps = int(spec.extra.get("fps", DEFAULT_FPS)) if fps is None else fps
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise InvalidOption(f"FPS must be {FPS_RANGE[0]}-{FPS_RANGE[1]}; you asked for {fps}.")
    motion = int(spec.extra.get("motion", DEFAULT_MOTION)) if motion is None else motion
    if not MOTION_RANGE[0] <= motion <= MOTION_RANGE[1]:
        raise InvalidOption(f"Motion must be {MOTION_RANGE[0]}-{MOTION_RANGE[1]}; you asked for {motion}.")
    return frames, fps, motion


def check_seed(seed: int | None) -> int:
    if seed is None or seed < 0:
        return secrets.randbelow(SEED_LIMIT)
    if seed >= SEED_LIMIT:
        raise InvalidOption(f"Seed must be between 0 and {SEED_LIMIT - 1}; you gave {seed}.")
    return seed


def _params(spec: ModelSpec, image: Image.Image, *, prompt: str, frames: int, fps: int, motion: int, seed: int,
            source: dict[str, Any]) -> dict[str, Any]:
    width, height = size_for_image(spec, *image.size)
    fitted = ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    return {"model": spec.name, "prompt": prompt, "negative_prompt": "", "task": "img2vid", "seed": seed,
            "count": 1, "steps": spec.steps, "guidance": spec.guidance, "width": width, "height": height,
            "frames": frames, "fps": fps, "motion": motion, "init_image": encode_for_job(fitted), "source": source}


async def animate_attachment(registry: ModelRegistry, image: InputImage, *, frames: int | None, fps: int | None,
                             motion: int | None, seed: int | None, model: str | None = None) -> dict[str, Any]:
    spec = video_spec(registry, model)
    frames, fps, motion = check_options(spec, frames, fps, motion)
    return await asyncio.to_thread(_params, spec, image.image, prompt=f"Animation of {image.filename[:200]}",
                                   frames=frames, fps=fps, motion=motion, seed=check_seed(seed),
                                   source={"attachment": image.filename[:100]})


def animate_output(spec: ModelSpec, png: bytes, *, prompt: str, job_id: int, index: int) -> dict[str, Any]:
    """Parameters to animate image ``index`` (``png``) of a finished job (Animate button, 🎬) with the
    model's defaults. Decodes the image: run it off the event loop."""
    frames, fps, motion = check_options(spec, None, None, None)
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    return _params(spec, image, prompt=prompt, frames=frames, fps=fps, motion=motion, seed=check_seed(None),
                   source={"job_id": job_id, "index": index})


def stills_for_moderation(files: list[bytes]) -> list[bytes]:
    """Videos become their first, middle and last frames (PNG) so the image check can score them."""
    from inference.video import sample_frames_png, sniff_mime

    stills: list[bytes] = []
    for data in files:
        stills.extend(sample_frames_png(data) if sniff_mime(data) in VIDEO_MIMES else [data])
    return stills
