"""Jobs made from images: /imagine with an attachment, variations (V buttons) and upscales of a result.

Pure builders: options and images already in hand become job parameters. The input image goes
into the parameters as lossless WebP in base64 (bot/params/attachments.py); the job service stores
it apart from the job row (bot/services/inputs.py), so a queued job keeps its input across a
restart and a reroll of a variation varies the same image again. ``source`` records where it came
from, for the embed. Reading a parent result from the database is bot/services/derived.py's work.
"""

from __future__ import annotations

import asyncio
import io
import math
import secrets
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from bot.errors import InvalidOption
from bot.params import canvas
from bot.params.attachments import InputImage, encode_for_job
from inference.limits import (
    MAX_STRENGTH,
    MIN_STRENGTH,
    SD_X4_SCALE,
    SEED_LIMIT,
    SIZE_GRID,
    UPSCALE_FACTORS,
    UPSCALE_MAX_INPUT,
    sd_x4_max_input,
)
from inference.models import UPSCALER_KINDS, ModelSpec

if TYPE_CHECKING:
    from inference.models import ModelRegistry

DEFAULT_STRENGTH = 0.6
# Midjourney's "Vary (Subtle)" and "Vary (Strong)": how far a variation may wander from its image.
SUBTLE, STRONG = 0.35, 0.7
# Commands whose results are images made by a diffusion model with a prompt (variations keep it;
# reroll, upscale and animate reactions accept them).
VARIABLE_COMMANDS = ("imagine", "anime", "pose", "blend")
# The longest side ratio an input may have; beyond it the model would be asked for strips.
_MAX_ASPECT = 4.0


def check_strength(strength: float | None, *, has_image: bool) -> float:
    if strength is None:
        return DEFAULT_STRENGTH
    if not has_image:
        raise InvalidOption("`strength` only applies with an `image`: attach one, or leave strength out.")
    if not (math.isfinite(strength) and MIN_STRENGTH <= strength <= MAX_STRENGTH):
        raise InvalidOption(f"Strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}; you asked for {strength:g}.")
    return float(strength)


def size_for_image(spec: ModelSpec, width: int, height: int) -> tuple[int, int]:
    """The model's native pixel budget at the input's aspect ratio, in multiples of 64."""
    ratio = width / height
    if not 1 / _MAX_ASPECT <= ratio <= _MAX_ASPECT:
        raise InvalidOption(f"The image is {width}×{height}; its sides can differ by at most {_MAX_ASPECT:g}×. "
                            "Crop it and try again.")
    budget = spec.width * spec.height
    w = max(SIZE_GRID, round(math.sqrt(budget * ratio) / SIZE_GRID) * SIZE_GRID)
    h = max(SIZE_GRID, round(math.sqrt(budget / ratio) / SIZE_GRID) * SIZE_GRID)
    return w, h


async def imagine_from_image(params: dict[str, Any], spec: ModelSpec, image: InputImage,
                             strength: float) -> dict[str, Any]:
    """/imagine parameters (checked, for model ``spec``) turned image-to-image: the input's shape at
    the model's pixel budget."""
    width, height = size_for_image(spec, *image.size)
    fitted = await asyncio.to_thread(ImageOps.fit, image.image, (width, height), Image.Resampling.LANCZOS)
    params = {**params, "width": width, "height": height, "task": "img2img", "strength": strength,
              "init_image": await asyncio.to_thread(encode_for_job, fitted),
              "source": {"attachment": image.filename[:100]}}
    params.pop("aspect", None)
    return params


def variation(parent: dict[str, Any], png: bytes, *, job_id: int, index: int, strength: float) -> dict[str, Any]:
    """Image-to-image from image ``index`` (``png``) of job ``job_id``: its parameters, a new seed.
    Decodes and re-encodes the image: run it off the event loop."""
    return {**parent, "task": "img2img", "strength": strength, "seed": secrets.randbelow(SEED_LIMIT),
            "init_image": _reencode(png), "source": {"job_id": job_id, "index": index}}


def upscalers(registry: ModelRegistry) -> list[ModelSpec]:
    """Installed upscalers, Real-ESRGAN ones first: the first is the default of /upscale, U and 🔍."""
    found = [spec for spec in registry.specs() if spec.kind in UPSCALER_KINDS]
    return sorted(found, key=lambda spec: spec.kind != "esrgan")


def pick_model(available: list[ModelSpec], name: str | None, *, what: str, missing: str) -> ModelSpec:
    """``name`` among the registry's models of one family (the first when None), or a specific refusal:
    ``missing`` when the family has none, the valid names when ``name`` is not one of them."""
    if not available:
        raise InvalidOption(missing)
    if name is None:
        return available[0]
    for spec in available:
        if spec.name == name:
            return spec
    raise InvalidOption(f"Unknown {what} {name!r}; choose one of {', '.join(s.name for s in available)}.")


def upscaler_spec(registry: ModelRegistry, name: str | None) -> ModelSpec:
    return pick_model(upscalers(registry), name, what="upscaler",
                      missing="No upscaler is installed on this bot; ask its admin to add one to models.toml.")


def check_scale(scale: int) -> int:
    if scale not in UPSCALE_FACTORS:
        raise InvalidOption(f"Scale must be {' or '.join(map(str, UPSCALE_FACTORS))}; you asked for {scale}.")
    return scale


def _upscale_params(spec: ModelSpec, image: Image.Image, scale: int, *, prompt: str, seed: int,
                    parameters: str | None, source: dict[str, Any], guide: str = "") -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": parameters} if parameters else {}
    steps, guidance = 1, 0.0
    if spec.kind == "sd-x4":
        if scale != SD_X4_SCALE:
            raise InvalidOption(f"{spec.name} enlarges x4 only; choose scale x4, or another upscaler for x2.")
        limit = sd_x4_max_input(spec)
        if image.width * image.height > limit:
            side = int(limit**0.5)
            raise InvalidOption(f"{spec.name} is for small images, up to {limit:,} pixels (e.g. {side}×{side}); "
                                f"this one is {image.width}×{image.height}. Use the default upscaler instead.")
        steps, guidance = spec.steps, spec.guidance
        extra["guide"] = guide[:2000]
    limit = UPSCALE_MAX_INPUT[scale]
    if image.width * image.height > limit:
        raise InvalidOption(f"x{scale} upscaling takes images up to {limit / 1e6:.1f} MP; this one is "
                            f"{image.width}×{image.height} ({image.width * image.height / 1e6:.1f} MP). "
                            + ("Try scale 2." if scale == 4 else "Resize it first."))
    return {"model": spec.name, "prompt": prompt, "negative_prompt": "", "task": "upscale", "scale": scale,
            "seed": seed, "count": 1, "steps": steps, "guidance": guidance, "width": image.width * scale,
            "height": image.height * scale, "init_image": encode_for_job(image), "source": source,
            "extra": extra}


async def upscale_attachment(registry: ModelRegistry, image: InputImage, scale: int, upscaler: str | None
                             ) -> dict[str, Any]:
    spec = upscaler_spec(registry, upscaler)
    return await asyncio.to_thread(_upscale_params, spec, image.image, check_scale(scale),
                                   prompt=f"Upscale of {image.filename[:200]}", seed=0, parameters=None,
                                   source={"attachment": image.filename[:100]})


def upscale_output(spec: ModelSpec, png: bytes, scale: int, *, prompt: str, seed: int, job_id: int,
                   index: int) -> dict[str, Any]:
    """Upscale parameters for image ``index`` (``png``) of a finished job (U buttons, 🔍), keeping its
    generation parameters in the PNG. Decodes the image: run it off the event loop."""
    from inference.media import read_parameters

    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    return _upscale_params(spec, image, check_scale(scale), prompt=prompt, seed=seed,
                           parameters=read_parameters(png), source={"job_id": job_id, "index": index},
                           guide=prompt)


def _reencode(png: bytes) -> str:
    with Image.open(io.BytesIO(png)) as image:
        return encode_for_job(image.convert("RGB"))


def describe_source(params: dict[str, Any]) -> str | None:
    """Where an image job's input came from, in words for the embed; None for text-to-image."""
    source = params.get("source") or {}
    if params.get("task") == "upscale":
        what = (f"image {int(source.get('index', 0)) + 1} of job #{source['job_id']}" if "job_id" in source
                else "your image")
        return f"{what.capitalize()} upscaled x{params.get('scale')} with {params.get('model')}"
    if params.get("task") == "img2vid":
        what = (f"image {int(source.get('index', 0)) + 1} of job #{source['job_id']}" if "job_id" in source
                else "your image")
        return f"{what.capitalize()} animated with {params.get('model')}"
    if params.get("task") == "pose":
        pose = params.get("pose") or {}
        what = f"preset “{pose['preset']}”" if "preset" in pose else f"your {pose.get('kind', 'image')}"
        return f"Pose from {what} at strength {float(params.get('control_scale', 1)):g}"
    if params.get("task") == "inpaint":
        return canvas.describe(params)
    if params.get("task") != "img2img":
        return None
    strength = params.get("strength")
    how = f" at strength {strength:g}" if isinstance(strength, int | float) else ""
    if "job_id" in source:
        return f"Variation of image {int(source.get('index', 0)) + 1} of job #{source['job_id']}{how}"
    return f"From your image{how}"
