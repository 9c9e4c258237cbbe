"""Inpainting for the SD 1.5 and SDXL families: Zoom Out, Pan, Vary (Region) and /edit.

The request carries the whole canvas (``init_image``) and a mask of the same size (white = redraw);
``width`` x ``height`` is the working size the bot picked within the model's pixel budget
(ModelSpec.size_for_canvas). The canvas and mask are resized to it, the model redraws the masked
part, the result is resized back to the canvas and laid over the source with a soft seam
(inference/canvas.py), so what lies away from the mask is the source's own pixels and the file has
the canvas's size.

Which weights redraw: a dedicated inpainting checkpoint (9-channel UNet) when the job names one or
its model's entry links one (``inpaint = "NAME"``), else the model's own weights through the inpaint
pipeline built over its resident pipeline (``from_pipe``: no second copy; diffusers then keeps the
unmasked latents at each step). Steps follow img2img: ``int(steps * strength)`` of the schedule run.

Like the other SD jobs (inference/runners/sd.py, sharing runners/base.py's ``job_prompt``): the
job's LoRAs and textual-inversion embeddings on the weights that redraw, for this job only, and
DPM++ SDE's noise seeded by the job. Not honoured here, so the bot drops them from canvas edits
(bot/params/canvas.py): IP-Adapter image prompts, hires fix, ControlNet images.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from diffusers import AutoPipelineForInpainting, DiffusionPipeline
from PIL import Image

from inference import canvas, embeddings, lora, tiling
from inference.finishing import Finishing, as_pil
from inference.limits import MAX_CANVAS_SIDE, MAX_MASK_BLUR
from inference.media import decode_job_image
from inference.models import INPAINT_FAMILY, INPAINT_KINDS, ModelSpec, RequestRefused
from inference.runners.base import (
    cancellable,
    check_img2img,
    check_prompt_job,
    image_result,
    job_prompt,
    job_scheduler,
    seed_noise_sampler,
    stop_if_cancelled,
    wrong_kind,
)
from inference.runners.img2img import schedule
from inference.runners.txt2img import calls
from inference.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)


def check(spec: ModelSpec, request: GenerationRequest) -> float:
    """Refuse an inpaint job ``spec`` cannot run (before anything is decoded or loaded); returns the guidance."""
    if request.task != "inpaint":
        raise wrong_kind(spec, request)
    guidance = check_prompt_job(spec, request)
    check_img2img(request)
    if not request.mask_image:
        raise RequestRefused("Inpainting needs a mask (white where the image is redrawn)")
    if isinstance(request.mask_blur, bool) or not 0 <= int(request.mask_blur) <= MAX_MASK_BLUR \
            or int(request.mask_blur) != request.mask_blur:
        raise RequestRefused(f"Mask blur must be a whole number of pixels, 0-{MAX_MASK_BLUR}; you asked for "
                             f"{request.mask_blur}")
    return guidance


def load_canvas(request: GenerationRequest) -> tuple[Image.Image, Image.Image]:
    """The canvas and its mask, checked against each other and the canvas limits."""
    try:
        image = decode_job_image(str(request.init_image))
    except (ValueError, OSError) as exc:
        raise RequestRefused(f"The image to edit cannot be read ({exc})") from None
    try:
        mask = canvas.decode_mask(str(request.mask_image))
    except ValueError as exc:
        raise RequestRefused(f"The mask cannot be read: {exc}") from None
    if max(image.size) > MAX_CANVAS_SIDE:
        raise RequestRefused(f"The image to edit is {image.width}x{image.height}; canvas edits stop at "
                             f"{MAX_CANVAS_SIDE} px a side")
    if mask.size != image.size:
        raise RequestRefused(f"The mask is {mask.width}x{mask.height} but the image is {image.width}x{image.height}; "
                             "they must be the same size")
    if not canvas.redraw_area(mask).any():
        raise RequestRefused("The mask is all black: nothing to redraw (white marks the part to redraw)")
    return image, mask


def inpaint_spec(engine: Engine, spec: ModelSpec) -> ModelSpec:
    """The entry whose weights redraw: ``spec`` itself, or the dedicated inpainting model it links."""
    if spec.kind in INPAINT_KINDS or not spec.inpaint:
        return spec
    return engine.registry.get(spec.inpaint)


def derive(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """The inpaint pipeline sharing ``pipe``'s modules (no weights are copied)."""
    derived = AutoPipelineForInpainting.from_pipe(pipe)
    derived.set_progress_bar_config(disable=True)
    return derived


def pipelines(engine: Engine, spec: ModelSpec) -> tuple[DiffusionPipeline, DiffusionPipeline]:
    """(the pipeline whose modules and scheduler the job uses, the inpaint pipeline to call)."""
    if spec.kind in INPAINT_KINDS:
        pipe = engine.cache.get(spec, engine.device)
        return pipe, pipe
    pipe = engine.pipeline(spec)
    derived = engine.cache.companion((f"{spec.name}:inpaint", engine.device), pipe, lambda: derive(pipe))
    derived.scheduler = pipe.scheduler
    return pipe, derived


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: Callable[[int, int], None] | None,
           is_cancelled: Callable[[], bool] | None) -> Finishing:
    guidance = check(spec, request)
    source, mask = load_canvas(request)
    run_spec = inpaint_spec(engine, spec)
    if run_spec is not spec:  # the dedicated model answers for its own limits too
        guidance = check(run_spec, request)
    stop_if_cancelled(request, is_cancelled)
    with engine.cache.pinned(engine.device, [run_spec.name]):
        pipe, run_pipe = pipelines(engine, run_spec)
        family = INPAINT_FAMILY.get(run_spec.kind, run_spec.kind)
        job_loras = lora.prepare(engine.loras, request.loras, kind=family, model=run_spec.name,
                                 model_width=int(pipe.unet.config.cross_attention_dim))
        job_embeddings = embeddings.prepare(engine.embeddings, request.embeddings)
        size = (request.width, request.height)
        working = source.resize(size, Image.Resampling.LANCZOS) if source.size != size else source
        working_mask = mask.resize(size, Image.Resampling.BILINEAR) if mask.size != size else mask
        # Some inpainting checkpoints degrade from pure noise (the SDXL one's card asks for strength < 1).
        strength = min(request.strength, float(run_spec.extra.get("max_strength", 1.0)))
        num_steps, effective = schedule(request.steps, strength)
        started = time.perf_counter()
        with (job_scheduler(engine, run_spec, pipe, request.scheduler) as sampled, cancellable(request),
              tiling.seamless(pipe, request.tile)):
            run_pipe.scheduler = pipe.scheduler
            seed_noise_sampler(pipe, request)
            with job_prompt(engine, run_spec, pipe, request, job_loras, job_embeddings, guidance=guidance) as encoded:
                images = calls(run_pipe, request, steps=effective, guidance=guidance, device=engine.device,
                               output_type="pil", on_step=on_step, is_cancelled=is_cancelled,
                               batch=engine.batch_images, prompt=encoded.kwargs, image=working,
                               mask_image=working_mask, strength=strength, width=request.width,
                               height=request.height, num_inference_steps=num_steps)
    run_seconds = time.perf_counter() - started
    return Finishing(request.job_id, partial(finish, sampled, request, guidance, images, run_seconds, source, mask,
                                             strength, loras=job_loras, embeddings=job_embeddings,
                                             notes=encoded.notes))


def finish(spec: ModelSpec, request: GenerationRequest, guidance: float, images: list[Any], run_seconds: float,
           source: Image.Image, mask: Image.Image, strength: float, **options: Any) -> GenerationResult:
    """Each image back at the canvas's size with the source pasted outside the mask, then the files."""
    alpha = canvas.seam_alpha(mask, int(request.mask_blur))
    kept = [canvas.paste_back(source, image, alpha) for image in as_pil(images)]
    extra: dict[str, Any] = {"Denoising strength": f"{strength:g}", "Mask blur": int(request.mask_blur)}
    if request.tile:
        extra["Tiling"] = True
    return image_result(spec, request, guidance, kept, run_seconds, parameters=extra, **options)

