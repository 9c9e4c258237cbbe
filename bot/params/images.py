"""Jobs made from images: /imagine with an attachment, and variations (V buttons) of a result.

The input image travels inside the job's stored parameters (``init_image``, lossless WebP as
base64; see bot/params/attachments.py), so a queued job keeps its input across a restart and a reroll of
a variation varies the same image again. ``source`` records where it came from, for the embed.
Trade-off: a parent output is copied into the child's parameters (a few hundred KB at SD sizes,
~1-2 MB at SDXL sizes) rather than referenced; a reference would need the job service to resolve
inputs when a worker claims the job.
"""

from __future__ import annotations

import asyncio
import io
import math
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from bot.errors import InvalidOption, UnknownJob
from bot.params.attachments import InputImage, encode_for_job
from db.models import Job, Output
from db.repositories import jobs as jobs_repo
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
    from bot.services.jobs import ImagineOptions, JobService, Origin, Ticket

DEFAULT_STRENGTH = 0.6
# Midjourney's "Vary (Subtle)" and "Vary (Strong)": how far a variation may wander from its image.
SUBTLE, STRONG = 0.35, 0.7
# Commands whose results are images made by a diffusion model with a prompt (variations keep it;
# reroll, upscale and animate reactions accept them).
VARIABLE_COMMANDS = ("imagine", "anime", "pose")
# The longest side ratio an input may have; beyond it the model would be asked for strips.
_MAX_ASPECT = 4.0
# Kinds the /imagine command may name (upscalers and video models live in the same registry).
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


async def imagine_from_image(service: JobService, options: ImagineOptions, image: InputImage,
                             strength: float) -> dict[str, Any]:
    """/imagine parameters for image-to-image: the input's shape at the model's budget."""
    params = service.prepare_imagine(options)
    spec = service.model_spec(params["model"])
    width, height = size_for_image(spec, *image.size)
    fitted = await asyncio.to_thread(ImageOps.fit, image.image, (width, height), Image.Resampling.LANCZOS)
    params.update(width=width, height=height, task="img2img", strength=strength,
                  init_image=await asyncio.to_thread(encode_for_job, fitted),
                  source={"attachment": image.filename[:100]})
    params.pop("aspect", None)
    return params


async def parent_output(service: JobService, job_id: int, index: int,
                        refuse: Callable[[Job], str | None]) -> tuple[Job, Output]:
    """Job ``job_id`` and its image ``index``, for work made from a result (vary, upscale, animate).

    Refuses a deleted job, then whatever ``refuse`` names (the kind of result this work does not take),
    then an image the job does not have."""
    async with service.reads() as session:
        parent = await jobs_repo.get_job(session, job_id=job_id)
        outputs = await jobs_repo.get_outputs(session, job_id=job_id) if parent is not None else []
    if parent is None:
        raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
    refusal = refuse(parent)
    if refusal is not None:
        raise InvalidOption(refusal)
    output = next((o for o in outputs if o.index == index), None)
    if output is None:
        raise InvalidOption(f"Job #{job_id} has no image {index + 1}.")
    return parent, output


async def variation(service: JobService, *, job_id: int, index: int, strength: float, origin: Origin) -> Ticket:
    """Image-to-image from image ``index`` of job ``job_id``, same prompt and options, new seed."""
    parent, output = await parent_output(
        service, job_id, index, lambda job: None if job.command in VARIABLE_COMMANDS else
        f"Job #{job_id} is a /{job.command} result; only generated images can be varied.")
    if parent.params.get("model") not in service.registry.names():
        raise InvalidOption(f"The model {parent.params.get('model')!r} of job #{job_id} is no longer installed.")
    params = dict(parent.params)
    params.update(task="img2img", strength=strength, seed=secrets.randbelow(SEED_LIMIT),
                  init_image=await asyncio.to_thread(_reencode, output.data),
                  source={"job_id": job_id, "index": index})
    return await service.submit(command=parent.command, params=params, origin=origin, parent_job_id=job_id)


def upscalers(service: JobService) -> list[ModelSpec]:
    """Installed upscalers, Real-ESRGAN ones first: the first is the default of /upscale, U and 🔍."""
    found = [spec for spec in service.registry.specs() if spec.kind in UPSCALER_KINDS]
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


def upscaler_spec(service: JobService, name: str | None) -> ModelSpec:
    return pick_model(upscalers(service), name, what="upscaler",
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


async def upscale_attachment(service: JobService, image: InputImage, scale: int, upscaler: str | None
                             ) -> dict[str, Any]:
    spec = upscaler_spec(service, upscaler)
    return await asyncio.to_thread(_upscale_params, spec, image.image, check_scale(scale),
                                   prompt=f"Upscale of {image.filename[:200]}", seed=0, parameters=None,
                                   source={"attachment": image.filename[:100]})


async def upscale_output(service: JobService, *, job_id: int, index: int, scale: int, origin: Origin,
                         upscaler: str | None = None) -> Ticket:
    """Upscale image ``index`` of a finished job (U buttons, 🔍), keeping its parameters in the PNG."""
    from inference.media import read_parameters

    spec = upscaler_spec(service, upscaler)
    parent, output = await parent_output(
        service, job_id, index, lambda job: f"Job #{job_id} is already an upscale." if job.command == "upscale" else None)

    def build() -> dict[str, Any]:
        with Image.open(io.BytesIO(output.data)) as opened:
            image = opened.convert("RGB")
        return _upscale_params(spec, image, check_scale(scale), prompt=parent.prompt, seed=output.seed,
                               parameters=read_parameters(output.data), source={"job_id": job_id, "index": index},
                               guide=parent.prompt)

    params = await asyncio.to_thread(build)
    return await service.submit(command="upscale", params=params, origin=origin, parent_job_id=job_id)


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
    if params.get("task") != "img2img":
        return None
    strength = params.get("strength")
    how = f" at strength {strength:g}" if isinstance(strength, int | float) else ""
    if "job_id" in source:
        return f"Variation of image {int(source.get('index', 0)) + 1} of job #{source['job_id']}{how}"
    return f"From your image{how}"
