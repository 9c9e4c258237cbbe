"""Stable Diffusion 2.x (``sd2``; 768-v): the SD text-to-image and image-to-image runners, unchanged.

SD 2.1 is the SD pipeline class with an OpenCLIP text encoder and a v-prediction UNet. What differs
is declared by the model's own folder: its scheduler config says ``prediction_type = "v_prediction"``,
and the cache builds every sampler from that config, so DPM++ or Euler predict v as they must.
It runs without the SD 1.5/SDXL runner's prompt weighting, LoRAs and cross-job batching.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from inference.models import ModelSpec, RequestRefused
from inference.runners import base, img2img, txt2img
from inference.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest,
           on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The runner of ``sd2`` models: text to image, and image to image for variations."""
    variation = request.task == "img2img"
    if variation:
        base.check_img2img(request)
    guidance = base.check_prompt_job(spec, request)
    if request.task not in ("txt2img", "img2img"):
        raise RequestRefused(f"Task {request.task!r} is not supported by {spec.name}")
    base.stop_if_cancelled(request, is_cancelled)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    with base.job_scheduler(engine, spec, pipe, request.scheduler) as run_spec, base.cancellable(request):
        if variation:
            images = img2img.run(img2img.pipeline_over(engine, spec, pipe), request, guidance=guidance,
                                 device=engine.device, on_step=on_step, is_cancelled=is_cancelled,
                                 batch=engine.batch_images)
        else:
            images = txt2img.run(pipe, request, guidance=guidance, device=engine.device, on_step=on_step,
                                 is_cancelled=is_cancelled, batch=engine.batch_images)
    return base.image_result(run_spec, request, guidance, images, time.perf_counter() - started)
