"""Stable Diffusion 2.x (``sd2``; 768-v): the SD text-to-image and image-to-image runners, unchanged.

SD 2.1 is the SD pipeline class with an OpenCLIP text encoder and a v-prediction UNet. What differs
is declared by the model's own folder: its scheduler config says ``prediction_type = "v_prediction"``,
and the cache builds every sampler from that config, so DPM++ or Euler predict v as they must.
The engine dispatches only its original kinds itself, so this handler repeats its short
text-to-image path with the engine's helpers instead of editing the engine for one more kind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from inference.cache import make_scheduler
from inference.models import ModelSpec, RequestRefused
from inference.runners import img2img, txt2img
from inference.types import GenerationRequest, GenerationResult, JobCancelled

log = logging.getLogger(__name__)

MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0


def handle(engine: Any, spec: ModelSpec, request: GenerationRequest,
           on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The HANDLERS entry for ``sd2`` models: text to image, and image to image for variations."""
    variation = request.task == "img2img"
    if variation:
        if not request.init_image:
            raise RequestRefused("Image-to-image needs an input image")
        if not MIN_STRENGTH <= request.strength <= MAX_STRENGTH:
            raise RequestRefused(f"Strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}; you asked for {request.strength:g}")
    # The engine's own checks (options, size, prompt, scheduler) for the text-to-image shape of the job.
    guidance = engine._check(spec, replace(request, task="txt2img") if variation else request)
    if is_cancelled is not None and is_cancelled():
        raise JobCancelled(request.job_id, 0)
    pipe = engine.pipeline(spec)
    previous = pipe.scheduler
    run_spec = spec
    if request.scheduler and request.scheduler != spec.scheduler:
        run_spec = replace(spec, scheduler=request.scheduler)
        pipe.scheduler = make_scheduler(run_spec, engine.cache.scheduler_config(spec, engine.device))
    started = time.perf_counter()
    try:
        if variation:
            derived = engine.cache.companion((f"{spec.name}:img2img", engine.device), pipe, lambda: img2img.derive(pipe))
            derived.scheduler = pipe.scheduler
            images = img2img.run(derived, request, guidance=guidance, device=engine.device, on_step=on_step,
                                 is_cancelled=is_cancelled, batch=engine.batch_images)
        else:
            images = txt2img.run(pipe, request, guidance=guidance, device=engine.device, on_step=on_step,
                                 is_cancelled=is_cancelled, batch=engine.batch_images)
    except txt2img.StepsInterrupted as stop:
        raise JobCancelled(request.job_id, stop.step) from None
    finally:
        pipe.scheduler = previous
    return engine._result(run_spec, request, guidance, images, time.perf_counter() - started)
