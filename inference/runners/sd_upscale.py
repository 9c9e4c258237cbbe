"""The Stable Diffusion x4 upscaler (``sd-x4``): prompt-guided latent diffusion that enlarges small images x4.

Unlike Real-ESRGAN it redraws detail, guided by a prompt (the source job's, when there is one), so
it suits small images (an SD 1.5 draft, a 128 px crop) better than big ones: its UNet runs at the
input's size and its VAE decodes at four times it, so the input is capped (``max_input`` pixels,
default 256x256) instead of tiled. It only enlarges x4; x2 is refused rather than faked by resizing.

This pipeline predates ``callback_on_step_end``: progress and cancellation use its legacy
``callback(step, timestep, latents)``, raising StepsInterrupted as the other runners do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PIL import Image

from inference.limits import SD_X4_SCALE, sd_x4_max_input
from inference.media import decode_job_image
from inference.models import ModelSpec, RequestRefused, validate_request_options
from inference.runners.base import cancellable, stop_if_cancelled, upscaled_result
from inference.runners.txt2img import StepsInterrupted, generators_for
from inference.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine

# The noise added to the low-resolution input (0-350); the model card's example uses 20.
DEFAULT_NOISE_LEVEL = 20


def check(spec: ModelSpec, request: GenerationRequest, image: Image.Image) -> None:
    if request.task != "upscale":
        raise RequestRefused(f"{spec.name} is an upscaler; it cannot run a {request.task} job")
    if request.scale != SD_X4_SCALE:
        raise RequestRefused(f"{spec.name} enlarges x4 only; you asked for x{request.scale} "
                            "(use a Real-ESRGAN upscaler for x2)")
    validate_request_options(spec, request.steps, 1, request.guidance)
    limit = sd_x4_max_input(spec)
    if image.width * image.height > limit:
        raise RequestRefused(f"{spec.name} takes images up to {limit:,} pixels (e.g. {int(limit ** 0.5)}x"
                            f"{int(limit ** 0.5)}); this one is {image.width}x{image.height}")


def upscale(pipe: Any, image: Image.Image, *, guide: str, steps: int, guidance: float, noise_level: int, seed: int,
            device: str, on_step: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None) -> Image.Image:
    """``image`` at four times its size; raises StepsInterrupted when ``is_cancelled`` turns true."""

    def callback(step: int, timestep: Any, latents: Any) -> None:
        done = step + 1
        if on_step is not None:
            on_step(done, steps)
        if is_cancelled is not None and done < steps and is_cancelled():
            raise StepsInterrupted(done)

    output = pipe(prompt=guide, image=image, num_inference_steps=steps, guidance_scale=guidance,
                  noise_level=noise_level, generator=generators_for([seed], device)[0], callback=callback,
                  callback_steps=1, output_type="pil")
    return output.images[0]


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest,
           on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The runner of ``sd-x4`` models (/upscale with ``upscaler:`` naming one)."""
    if not request.init_image:
        raise RequestRefused("Upscaling needs an input image")
    image = decode_job_image(request.init_image)
    check(spec, request, image)
    stop_if_cancelled(request, is_cancelled)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    with cancellable(request):
        result = upscale(pipe, image, guide=str(request.extra.get("guide", "")), steps=request.steps,
                         guidance=request.guidance, noise_level=int(spec.extra.get("noise_level", DEFAULT_NOISE_LEVEL)),
                         seed=request.seed, device=engine.device, on_step=on_step, is_cancelled=is_cancelled)
    return upscaled_result(spec, request, result, SD_X4_SCALE, time.perf_counter() - started)
