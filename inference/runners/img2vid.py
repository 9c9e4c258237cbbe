"""Image to video with Stable Video Diffusion (img2vid 14 frames, img2vid-xt 25).

SVD is conditioned on the image (CLIP image embedding and the VAE latent of a lightly noised copy),
the playback rate, and a motion bucket (1-255: how much moves). Guidance ramps per frame from 1.0 on
the first to the request's guidance on the last, as the model card runs it. ``decode_chunk_size``
decodes that many frames through the temporal VAE at once: the VAE, not the UNet, is what runs a
GPU out of memory on 25 frames, so the registry bounds it per model.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from diffusers import DiffusionPipeline
from PIL import Image

from inference.limits import FPS_RANGE, MIN_FRAMES, MOTION_RANGE, frame_limits
from inference.media import a1111_parameters
from inference.models import ModelSpec, RequestRefused, validate_request_options
from inference.runners.base import cancellable, check_size, stop_if_cancelled, wrong_kind
from inference.runners.img2img import prepare_image
from inference.runners.txt2img import CancelCheck, StepCallback, generators_for, step_callback
from inference.types import GeneratedImage, GenerationRequest, GenerationResult
from inference.video import encode_video

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

NOISE_AUG_STRENGTH = 0.02
DEFAULT_DECODE_CHUNK = 8


def animate(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    spec: ModelSpec,
    *,
    device: str,
    on_step: StepCallback | None = None,
    is_cancelled: CancelCheck | None = None,
) -> list[Image.Image]:
    """The frames of one video from ``request.init_image`` (centre-cropped to the request's size)."""
    image = prepare_image(request)
    total = request.steps

    output = pipe(
        image,
        height=request.height,
        width=request.width,
        num_frames=request.frames,
        num_inference_steps=request.steps,
        min_guidance_scale=1.0,
        max_guidance_scale=max(1.0, request.guidance),
        fps=request.fps,
        motion_bucket_id=request.motion,
        noise_aug_strength=NOISE_AUG_STRENGTH,
        decode_chunk_size=int(spec.extra.get("decode_chunk_size", DEFAULT_DECODE_CHUNK)),
        generator=generators_for([request.seed], device)[0],
        callback_on_step_end=step_callback(0, total, on_step, is_cancelled),
        output_type="pil",
    )
    return list(output.frames[0])


def check(spec: ModelSpec, request: GenerationRequest) -> GenerationRequest:
    """Refuse what the video model cannot do; returns the request with its frame count filled in."""
    if request.task != "img2vid":
        raise wrong_kind(spec, request)
    default_frames, max_frames = frame_limits(spec)
    if request.frames == 0:
        request = replace(request, frames=default_frames)
    if not MIN_FRAMES <= request.frames <= max_frames:
        raise RequestRefused(f"Frames must be {MIN_FRAMES}-{max_frames} for {spec.name}; you asked for {request.frames}")
    if not FPS_RANGE[0] <= request.fps <= FPS_RANGE[1]:
        raise RequestRefused(f"FPS must be {FPS_RANGE[0]}-{FPS_RANGE[1]}; you asked for {request.fps}")
    if not MOTION_RANGE[0] <= request.motion <= MOTION_RANGE[1]:
        raise RequestRefused(f"Motion must be {MOTION_RANGE[0]}-{MOTION_RANGE[1]}; you asked for {request.motion}")
    validate_request_options(spec, request.steps, 1, request.guidance)
    check_size(request)
    if not request.init_image:
        raise RequestRefused("Animating needs an input image")
    return request


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: StepCallback | None,
           is_cancelled: CancelCheck | None) -> GenerationResult:
    """The runner of ``svd`` models: /animate, the Animate button and 🎬."""
    request = check(spec, request)
    stop_if_cancelled(request, is_cancelled)
    pipe = engine.pipeline(spec)
    started = time.perf_counter()
    with cancellable(request):
        frames = animate(pipe, request, spec, device=engine.device, on_step=on_step, is_cancelled=is_cancelled)
    text = a1111_parameters(request.prompt, "", request.steps, spec.sampler, request.guidance, request.seed,
                            request.width, request.height, spec.name,
                            {"Frames": request.frames, "FPS": request.fps, "Motion bucket": request.motion})
    data, mime = encode_video(frames, request.fps, comment=text)
    return GenerationResult(
        job_id=request.job_id,
        images=[GeneratedImage(data, request.seed, frames[0].width, frames[0].height, mime=mime)],
        grid_png=None,
        run_seconds=time.perf_counter() - started,
        parameters=text,
    )
