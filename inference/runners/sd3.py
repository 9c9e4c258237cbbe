"""Stable Diffusion 3 (``sd3``, e.g. SD 3 Medium): an MMDiT with three text encoders and flow matching.

SD 3 reads the prompt with CLIP-L, CLIP-G and T5-XXL; T5 takes up to ``max_sequence_length`` tokens
(256 by default here, the pipeline's default; 512 in the registry's `max_sequence_length` costs
memory), so long prompts survive where CLIP's 77 tokens end. It samples with its own
flow-matching Euler scheduler only (the registry refuses other samplers), and has no image-to-image
path here: variations of its results are refused with a message rather than run through a
different model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image

from inference.models import ModelSpec, RequestRefused
from inference.runners.base import cancellable, check_prompt_job, image_result, stop_if_cancelled
from inference.runners.txt2img import generators_for, step_callback
from inference.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine

DEFAULT_MAX_SEQUENCE = 256


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest,
           on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The runner of ``sd3`` models."""
    if request.task != "txt2img":
        raise RequestRefused(f"{spec.name} (SD 3) only draws from text; it cannot run a {request.task} job")
    if request.scheduler not in (None, "default"):
        raise RequestRefused(f"{spec.name} samples with its own flow-matching scheduler only; "
                            f"{request.scheduler!r} does not apply to it")
    guidance = check_prompt_job(spec, request)
    if request.width % 16 or request.height % 16:
        raise RequestRefused(f"SD 3 needs sizes in multiples of 16; you asked for {request.width}x{request.height}")
    stop_if_cancelled(request, is_cancelled)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    with cancellable(request):
        images = run(pipe, request, guidance=guidance, device=engine.device, on_step=on_step,
                     is_cancelled=is_cancelled, max_sequence_length=int(spec.extra.get("max_sequence_length",
                                                                                         DEFAULT_MAX_SEQUENCE)))
    return image_result(spec, request, guidance, images, time.perf_counter() - started)


def run(pipe: Any, request: GenerationRequest, *, guidance: float, device: str, max_sequence_length: int,
        on_step: Callable[[int, int], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None) -> list[Image.Image]:
    """One call per image, so image i is exactly what seed + i gives alone (as txt2img promises)."""
    seeds = request.seeds()
    total = request.steps * len(seeds)
    images: list[Image.Image] = []
    for index, seed in enumerate(seeds):
        output = pipe(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt or None,
            width=request.width,
            height=request.height,
            num_inference_steps=request.steps,
            guidance_scale=guidance,
            generator=generators_for([seed], device),
            max_sequence_length=max_sequence_length,
            callback_on_step_end=step_callback(index * request.steps, total, on_step, is_cancelled),
            output_type="pil",
        )
        images.extend(output.images)
    return images
