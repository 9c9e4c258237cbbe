"""DeepFloyd IF (``deepfloyd-if``): pixel-space diffusion in stages, conditioned on T5-XXL.

Stage I draws 64x64 pixels from the prompt, stage II (a super-resolution UNet, ``stage_2`` in the
registry) takes them to 256x256 with the same text embeddings, and an optional stage III (``stage_3``,
the name of an ``sd-x4`` registry entry, as DeepFloyd's card uses the Stable Diffusion x4 upscaler)
takes them to 1024x1024. The registry's width and height are the final size: stage I draws at a
sixteenth of it with stage III, a quarter without, rounded to the 8 px its UNet needs, so a
non-square aspect may come out a few pixels off the requested size (the PNG says the true size).

The prompt is encoded once by stage I's T5 and the embeddings reused by stage II (its folder ships
no text encoder: T5-XXL is ~9 GB). Stage II is kept beside stage I as a cache companion. These
pipelines predate ``callback_on_step_end``: progress and cancellation use the legacy callback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from diffusers import IFSuperResolutionPipeline
from PIL import Image

from inference.models import ModelSpec, RequestRefused
from inference.runners import sd_upscale
from inference.runners.base import cancellable, check_prompt_job, image_result, stop_if_cancelled
from inference.runners.txt2img import StepsInterrupted, generators_for
from inference.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

# Stage II's noise augmentation of the stage I image (the card's default).
STAGE_2_NOISE = 250
STAGE_3_NOISE = 100


def stage_sizes(width: int, height: int, factor: int) -> tuple[int, int]:
    """Stage I's size for a final ``width`` x ``height``: the factor below it, in multiples of 8."""
    return max(8, round(width / factor / 8) * 8), max(8, round(height / factor / 8) * 8)


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest,
           on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The runner of ``deepfloyd-if`` models."""
    if request.task != "txt2img":
        raise RequestRefused(f"{spec.name} (DeepFloyd IF) only draws from text; it cannot run a {request.task} job")
    if not spec.extra.get("stage_2"):
        raise RequestRefused(f"{spec.name} has no `stage_2` in models.toml (DeepFloyd IF needs its stage II)")
    guidance = check_prompt_job(spec, replace_scheduler(request))
    stage_3 = engine.registry.get(str(spec.extra["stage_3"])) if spec.extra.get("stage_3") else None
    if stage_3 is not None and stage_3.kind != "sd-x4":
        raise RequestRefused(f"{spec.name}: stage_3 = {stage_3.name!r} must be an sd-x4 upscaler")
    stop_if_cancelled(request, is_cancelled)
    first = engine.pipeline(spec)
    second = engine.cache.companion((f"{spec.name}:stage-2", engine.device), first,
                                    lambda: _load_stage_2(engine, spec, first))
    third = engine.pipeline(stage_3) if stage_3 is not None else None
    small = stage_sizes(request.width, request.height, 16 if third is not None else 4)
    steps_3 = stage_3.steps if stage_3 is not None else 0
    per_image = 2 * request.steps + steps_3
    total = per_image * request.count
    started = time.perf_counter()
    images: list[Image.Image] = []
    with cancellable(request):
        with torch.no_grad():
            embeds, negative = first.encode_prompt(request.prompt, do_classifier_free_guidance=guidance > 1.0,
                                                   negative_prompt=request.negative_prompt or None,
                                                   device=torch.device(engine.device), clean_caption=False)
        for index, seed in enumerate(request.seeds()):
            offset = index * per_image
            generator = generators_for([seed], engine.device)
            low = first(prompt_embeds=embeds, negative_prompt_embeds=negative, width=small[0], height=small[1],
                        num_inference_steps=request.steps, guidance_scale=guidance, generator=generator,
                        output_type="pt", callback=_callback(offset, total, on_step, is_cancelled),
                        callback_steps=1).images
            mid = second(image=low, prompt_embeds=embeds, negative_prompt_embeds=negative,
                         num_inference_steps=request.steps, guidance_scale=guidance, noise_level=STAGE_2_NOISE,
                         generator=generator, output_type="pil",
                         callback=_callback(offset + request.steps, total, on_step, is_cancelled),
                         callback_steps=1).images[0]
            if third is not None and stage_3 is not None:
                done = offset + 2 * request.steps

                def stage_3_step(step: int, steps: int, done: int = done) -> None:
                    if on_step is not None:
                        on_step(done + step, total)

                mid = sd_upscale.upscale(third, mid, guide=request.prompt, steps=steps_3,
                                         guidance=stage_3.guidance, noise_level=STAGE_3_NOISE, seed=seed,
                                         device=engine.device, on_step=stage_3_step, is_cancelled=is_cancelled)
            images.append(mid)
    return image_result(spec, request, guidance, images, time.perf_counter() - started)


def replace_scheduler(request: GenerationRequest) -> GenerationRequest:
    """IF runs the DDPM schedules its stages ship (learned variance): a sampler choice cannot apply."""
    if request.scheduler not in (None, "default"):
        raise RequestRefused(f"DeepFloyd IF samples with its own schedulers only; {request.scheduler!r} does not apply")
    return request


def _load_stage_2(engine: Engine, spec: ModelSpec, first: Any) -> Any:
    options: dict[str, Any] = {"text_encoder": None, "safety_checker": None, "watermarker": None,
                               "feature_extractor": None, "requires_safety_checker": False}
    if spec.extra.get("variant") and engine.device != "cpu":
        options["variant"] = spec.extra["variant"]
    return engine.cache.load_part(IFSuperResolutionPipeline, spec.name, str(spec.extra["stage_2"]), engine.device,
                                  first.dtype, **options)


def _callback(offset: int, total: int, on_step: Callable[[int, int], None] | None,
              is_cancelled: Callable[[], bool] | None) -> Callable[[int, Any, Any], None]:
    """The legacy ``callback(step, timestep, latents)``: progress, and cancellation between steps."""

    def callback(step: int, timestep: Any, latents: Any) -> None:
        done = offset + step + 1
        if on_step is not None:
            on_step(done, total)
        if is_cancelled is not None and done < total and is_cancelled():
            raise StepsInterrupted(done)

    return callback
