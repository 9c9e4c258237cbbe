"""Image to video with Stable Video Diffusion (img2vid 14 frames, img2vid-xt 25).

SVD is conditioned on the image (CLIP image embedding and the VAE latent of a lightly noised copy),
the playback rate, and a motion bucket (1-255: how much moves). Guidance ramps per frame from 1.0 on
the first to the request's guidance on the last, as the model card runs it. ``decode_chunk_size``
decodes that many frames through the temporal VAE at once: the VAE, not the UNet, is what runs a
GPU out of memory on 25 frames, so the registry bounds it per model.
"""

from __future__ import annotations

import logging

from diffusers import DiffusionPipeline
from PIL import Image, ImageOps

from inference.media import decode_job_image
from inference.models import ModelSpec
from inference.runners.txt2img import CancelCheck, StepCallback, generators_for, step_callback
from inference.types import GenerationRequest

log = logging.getLogger(__name__)

NOISE_AUG_STRENGTH = 0.02
DEFAULT_DECODE_CHUNK = 8


def run(
    pipe: DiffusionPipeline,
    request: GenerationRequest,
    spec: ModelSpec,
    *,
    device: str,
    on_step: StepCallback | None = None,
    is_cancelled: CancelCheck | None = None,
) -> list[Image.Image]:
    """The frames of one video from ``request.init_image`` (centre-cropped to the request's size)."""
    if not request.init_image:
        raise ValueError("img2vid needs an input image")
    image = decode_job_image(request.init_image)
    size = (request.width, request.height)
    if image.size != size:
        image = ImageOps.fit(image, size, Image.Resampling.LANCZOS)
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
