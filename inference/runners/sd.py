"""The Stable Diffusion 1.5 and SDXL families (base, Lightning, Turbo): text to image (with hires fix
and seamless tiles), image to image and inpainting, with A1111 prompt weighting, long prompts and
per-job LoRAs.

These are the kinds the engine also batches across jobs and compiles (inference/engine.py), so
their images leave the device as uint8 arrays and their files are made on the worker's finishing
thread (inference/finishing.py).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from inference import embeddings, ipadapter, lora, tiling
from inference.finishing import Finishing
from inference.models import ModelSpec
from inference.runners import hires, img2img, inpaint, txt2img
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
from inference.types import GenerationRequest

if TYPE_CHECKING:
    from inference.engine import Engine

def check(spec: ModelSpec, request: GenerationRequest) -> float:
    """Refuse what the model cannot do; returns the guidance it will run at."""
    guidance = check_prompt_job(spec, request)
    if request.task == "img2img":
        check_img2img(request)
    elif request.task != "txt2img":
        raise wrong_kind(spec, request)
    if request.ip_images:
        ipadapter.check(request.ip_images, request.ip_weights, request.ip_mode, request.ip_scale)
    return guidance


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: Callable[[int, int], None] | None,
        is_cancelled: Callable[[], bool] | None) -> Finishing:
    if request.task == "inpaint":  # canvas edits: the entry's dedicated inpainting model, or its own weights
        return inpaint.handle(engine, spec, request, on_step, is_cancelled)
    guidance = check(spec, request)
    upscaler = hires.check(engine, request) if request.hires else None
    stop_if_cancelled(request, is_cancelled)
    pipe = engine.pipeline(spec)
    job_loras = lora.prepare(engine.loras, request.loras, kind=spec.kind, model=spec.name,
                             model_width=int(pipe.unet.config.cross_attention_dim))
    job_embeddings = embeddings.prepare(engine.embeddings, request.embeddings)
    variation = request.task == "img2img"
    runner = img2img.run if variation else txt2img.run
    parameters: dict[str, Any] = {}
    started = time.perf_counter()
    # /blend and style_ref: the IP-Adapter in the UNet for this job only (inference/ipadapter.py).
    image_prompt: dict[str, Any] = {}
    recorded: dict[str, str] = {}
    adapted: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if request.ip_images:
        adapter, embeds = ipadapter.job_embeds(engine, spec, pipe, request.ip_images, request.ip_weights, guidance)
        image_prompt = {"ip_adapter_image_embeds": embeds}
        recorded = ipadapter.parameters(adapter, request.ip_mode, request.ip_weights, request.ip_scale)
        adapted = ipadapter.applied(pipe.unet, adapter, kind=spec.kind, mode=request.ip_mode, scale=request.ip_scale)
    with (job_scheduler(engine, spec, pipe, request.scheduler) as run_spec, cancellable(request),
          tiling.seamless(pipe, request.tile), adapted):
        seed_noise_sampler(pipe, request)
        with job_prompt(engine, spec, pipe, request, job_loras, job_embeddings, guidance=guidance) as encoded:
            run_pipe = img2img.pipeline_over(engine, spec, pipe) if variation or request.hires else pipe
            one_call = not variation and engine.one_call_for_count(pipe, job_loras)
            options: dict[str, Any] = {"guidance": guidance, "on_step": on_step, "is_cancelled": is_cancelled,
                                       "batch": engine.batch_images or one_call, "prompt": encoded.kwargs,
                                       **image_prompt}
            if request.hires:
                images, parameters = hires.run(engine, pipe, run_pipe, request, upscaler, **options)
            else:
                images = runner(run_pipe, request, device=engine.device, **options)
    parameters.update(recorded)
    if request.tile:
        parameters["Tiling"] = True
    run_seconds = time.perf_counter() - started
    first_pass = (request.width, request.height) if request.hires else None
    return Finishing(request.job_id, partial(image_result, run_spec, request, guidance, images, run_seconds,
                                             loras=job_loras, embeddings=job_embeddings, notes=encoded.notes,
                                             parameters=parameters, size=first_pass))
