"""Image to image for the SD 1.5 and SDXL families: variations (V buttons) and /imagine with an image.

The img2img pipeline is derived from the resident text-to-image one with ``from_pipe`` (same
weights, no second copy in memory) and runs with that pipeline's current scheduler, so a
per-request scheduler choice applies here too. The engine drives both from one thread.

Steps follow diffusers (and AUTOMATIC1111): the schedule has ``steps`` points and only the last
``int(steps * strength)`` are run. When that would be zero (a low strength with few steps), the
schedule is lengthened just enough for one step, rather than failing.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from diffusers import AutoPipelineForImage2Image, DiffusionPipeline
from PIL import Image, ImageOps

from inference.media import decode_job_image
from inference.models import ModelSpec
from inference.runners.txt2img import calls
from inference.types import GenerationRequest

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)


def derive(pipe: DiffusionPipeline) -> DiffusionPipeline:
    """The img2img pipeline sharing ``pipe``'s modules (no weights are copied)."""
    derived = AutoPipelineForImage2Image.from_pipe(pipe)
    derived.set_progress_bar_config(disable=True)
    return derived


def pipeline_over(engine: Engine, spec: ModelSpec, pipe: DiffusionPipeline) -> DiffusionPipeline:
    """The img2img pipeline over the resident ``pipe`` of ``spec`` (kept while it stays resident),
    running ``pipe``'s current scheduler, so a job's scheduler choice applies to it too."""
    derived = engine.cache.companion((f"{spec.name}:img2img", engine.device), pipe, lambda: derive(pipe))
    derived.scheduler = pipe.scheduler
    return derived


def schedule(steps: int, strength: float) -> tuple[int, int]:
    """(num_inference_steps to pass, denoising steps that will actually run)."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    num = max(steps, math.ceil(1 / strength))
    return num, min(int(num * strength), num)


def prepare_image(request: GenerationRequest) -> Image.Image:
    """The stored input image at the request's size (centre-cropped, never stretched)."""
    if not request.init_image:
        raise ValueError("the job has no input image")
    image = decode_job_image(request.init_image)
    size = (request.width, request.height)
    if image.size != size:
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    return image


def run(pipe: DiffusionPipeline, request: GenerationRequest, **options: Any) -> list[Image.Image]:
    """``pipe`` is the img2img pipeline (see ``derive``); ``options`` as txt2img.calls takes them."""
    num_steps, effective = schedule(request.steps, request.strength)
    # One input image, made into as many latents as the call has images by the pipeline.
    return calls(pipe, request, steps=effective, output_type="pil", image=prepare_image(request),
                 strength=request.strength, num_inference_steps=num_steps, **options)
