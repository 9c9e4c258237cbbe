"""What every runner shares: the checks a request passes before it reaches a pipeline, the job's
scheduler on a pipeline, cancellation, and the finished result with the A1111 parameters that
PNG Info and Civitai read.

A runner is a function ``run(engine, spec, request, on_step, is_cancelled)`` registered for its
model kind in inference/runners/__init__.py. It uses the engine's public side (``pipeline``,
``cache``, ``device``, ``registry``, ``upscaler``) and the helpers here; the engine only looks the
kind up and calls it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from inference import checkpoints, lora, prompts
from inference import embeddings as embeddings_module
from inference.cache import make_scheduler
from inference.finishing import Finishing, as_pil
from inference.limits import MAX_STRENGTH, MIN_SIDE, MIN_STRENGTH, SIZE_MULTIPLE
from inference.media import a1111_parameters, encode_png, make_grid
from inference.models import SCHEDULERS, ModelSpec, RequestRefused, validate_request_options
from inference.runners.txt2img import CancelCheck, StepCallback, StepsInterrupted
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

# A runner finishes its files itself (GenerationResult) or leaves them to the worker's finishing
# thread (Finishing), as the text-to-image families do.
Runner = Callable[["Engine", ModelSpec, GenerationRequest, StepCallback | None, CancelCheck | None],
                  "GenerationResult | Finishing"]


def wrong_kind(spec: ModelSpec, request: GenerationRequest) -> RequestRefused:
    return RequestRefused(f"{spec.name} is a {spec.kind} model; it cannot run a {request.task} job")


def check_size(request: GenerationRequest) -> None:
    if request.width % SIZE_MULTIPLE or request.height % SIZE_MULTIPLE or min(request.width, request.height) < MIN_SIDE:
        raise RequestRefused(f"Width and height must be multiples of {SIZE_MULTIPLE} and at least {MIN_SIDE}; "
                             f"you asked for {request.width}x{request.height}")


def check_scheduler(request: GenerationRequest) -> None:
    if request.scheduler and request.scheduler not in SCHEDULERS:
        raise RequestRefused(f"Unknown scheduler {request.scheduler!r}; valid schedulers: {', '.join(SCHEDULERS)}")


def check_prompt_job(spec: ModelSpec, request: GenerationRequest) -> float:
    """Refuse a drawing job ``spec`` cannot do (options, size, prompt, scheduler); returns the
    guidance the model will actually use.

    Distilled models (Lightning, Turbo) were trained without classifier-free guidance: any guidance
    would only double the work and burn the image, so they always run at 0 and the parameters say 0.
    """
    validate_request_options(spec, request.steps, request.count, request.guidance)
    check_size(request)
    if not request.prompt.strip():
        raise RequestRefused("The prompt is empty")
    check_scheduler(request)
    return 0.0 if spec.few_step else float(request.guidance)


def check_img2img(request: GenerationRequest) -> None:
    if not request.init_image:
        raise RequestRefused("Image-to-image needs an input image")
    if not (math.isfinite(request.strength) and MIN_STRENGTH <= request.strength <= MAX_STRENGTH):
        raise RequestRefused(f"Strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}; you asked for {request.strength:g}")


def stop_if_cancelled(request: GenerationRequest, is_cancelled: CancelCheck | None) -> None:
    """Cancelled while waiting for the device: stop before loading or running anything."""
    if is_cancelled is not None and is_cancelled():
        raise JobCancelled(request.job_id, 0)


@contextmanager
def cancellable(request: GenerationRequest) -> Iterator[None]:
    """Turn a step callback's StepsInterrupted into the job's JobCancelled."""
    try:
        yield
    except StepsInterrupted as stop:
        log.info("job %s cancelled after step %d", request.job_id, stop.step)
        raise JobCancelled(request.job_id, stop.step) from None


@contextmanager
def job_scheduler(engine: Engine, spec: ModelSpec, pipe: Any, scheduler: str | None, *,
                  config_of: ModelSpec | None = None) -> Iterator[ModelSpec]:
    """Run ``pipe`` with the job's scheduler when it asks for another than the model's, built from the
    scheduler config of ``config_of`` (default ``spec``: a ControlNet samples as its base model does);
    yields the spec as run (its sampler goes into the parameters) and puts the model's back after."""
    if not scheduler or scheduler == spec.scheduler:
        yield spec
        return
    run_spec = replace(spec, scheduler=scheduler)
    previous = pipe.scheduler
    pipe.scheduler = make_scheduler(run_spec, engine.cache.scheduler_config(config_of or spec, engine.device))
    try:
        yield run_spec
    finally:
        pipe.scheduler = previous


def seed_noise_sampler(pipe: Any, request: GenerationRequest) -> None:
    """DPM++ SDE draws its noise from a Brownian tree, seeded by the torch RNG unless told: seeded by
    the job, the same job gives the same image. Call it with the job's scheduler on ``pipe``."""
    if hasattr(pipe.scheduler, "noise_sampler_seed"):
        pipe.scheduler.noise_sampler_seed = request.seed


@contextmanager
def job_prompt(engine: Engine, spec: ModelSpec, pipe: Any, request: GenerationRequest, job_loras: list[lora.JobLora],
               job_embeddings: list[embeddings_module.JobEmbedding], *,
               guidance: float) -> Iterator[prompts.EncodedPrompt]:
    """The job's LoRAs and textual-inversion embeddings on ``pipe`` while the block runs, and its prompts
    encoded once (not per image) with them active (the SD families: text to image, img2img, inpainting).

    Both live in modules other pipelines share (img2img, inpainting, SDXL-Lightning's text encoders):
    applied for this job only, removed (the embeddings with their token rows) before the next starts."""
    with (engine.adapters.applied(pipe, job_loras, model=spec.name),
          embeddings_module.applied(pipe, job_embeddings) as expand):
        yield prompts.encode(pipe, request.prompt, request.negative_prompt, guidance=guidance, device=engine.device,
                             clip_skip=spec.clip_skip, expand=expand if job_embeddings else None)


def image_result(
    spec: ModelSpec,
    request: GenerationRequest,
    guidance: float,
    images: list[Any],
    run_seconds: float,
    *,
    loras: list[lora.JobLora] | None = None,
    embeddings: list[embeddings_module.JobEmbedding] | None = None,
    notes: list[str] | None = None,
    parameters: Mapping[str, Any] | None = None,
    size: tuple[int, int] | None = None,
) -> GenerationResult:
    """The PNGs of a drawing job, each with its A1111 parameters, and a grid when there are several.

    ``parameters``: the runner's own A1111 keys, in A1111's order, after the common ones; ``size``:
    the ``Size`` to record when it is not the image's (hires fix records its first pass's)."""
    extra: dict[str, Any] = {"Schedule type": spec.schedule_type} if spec.schedule_type else {}
    if spec.clip_skip > 1:
        extra["Clip skip"] = spec.clip_skip
    if str(spec.extra.get("vae", "")).endswith(".safetensors"):
        extra["VAE"] = Path(str(spec.extra["vae"])).name
    # A1111's short hash of the checkpoint file, which Civitai matches to the model's page.
    model_hash = checkpoints.short_hash(Path(spec.source)) if spec.single_file else None
    if request.task == "img2img":
        # A1111's key for img2img strength, so PNG Info and Civitai show it.
        extra["Denoising strength"] = f"{request.strength:g}"
    extra.update(parameters or {})  # a job's own keys (e.g. its image prompt, inference/ipadapter.py)
    prompt = request.prompt
    if loras:
        # A1111 names LoRAs in the prompt (<lora:name:weight>) and lists their hashes, which
        # Civitai matches to its resources (AutoV3).
        prompt += "".join(f" <lora:{item.name}:{item.weight:g}>" for item in loras)
        extra["Lora hashes"] = ", ".join(f"{item.name}: {lora.short_hash(item.file.path)}" for item in loras)
    if embeddings:
        extra["TI hashes"] = ", ".join(f"{item.name}: {embeddings_module.short_hash(item.path)}" for item in embeddings)
    images = as_pil(images)  # uint8 arrays from the device, made into images here, off its thread
    generated: list[GeneratedImage] = []
    texts: list[str] = []
    for image, seed in zip(images, request.seeds(), strict=True):
        width, height = size or image.size
        text = a1111_parameters(prompt, request.negative_prompt, request.steps, spec.sampler, guidance, seed,
                                width, height, spec.name, extra, model_hash=model_hash)
        texts.append(text)
        generated.append(GeneratedImage(encode_png(image, text), seed, image.width, image.height))
    grid = encode_png(make_grid(images), texts[0]) if len(images) > 1 else None
    return GenerationResult(job_id=request.job_id, images=generated, grid_png=grid, run_seconds=run_seconds,
                            parameters=texts[0], notes=list(notes or []))


def upscaled_result(spec: ModelSpec, request: GenerationRequest, image: Image.Image, scale: int,
                    run_seconds: float) -> GenerationResult:
    """An upscaler's PNG: A1111's extras keys, after the source image's own parameters when the bot
    passed them."""
    base = str(request.extra.get("parameters") or "").strip()
    line = f"Postprocess upscale by: {scale}, Postprocess upscaler: {spec.name}"
    text = f"{base}, {line}" if base else line
    return GenerationResult(
        job_id=request.job_id,
        images=[GeneratedImage(encode_png(image, text), request.seed, image.width, image.height)],
        grid_png=None,
        run_seconds=run_seconds,
        parameters=text,
    )
