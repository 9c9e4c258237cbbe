"""Text to image for the Stable Diffusion 1.5 and SDXL families (base, Lightning, Turbo).

SD and SDXL pipelines take the same call arguments for plain text-to-image (SDXL derives its
size conditioning from width and height), so one runner serves both; a kind that needs different
arguments gets its own file beside this one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline

from inference.finishing import to_uint8
from inference.types import GenerationRequest

log = logging.getLogger(__name__)

StepCallback = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


class StepsInterrupted(Exception):
    """Raised out of the pipeline by the step callback to stop a cancelled job at once.

    Raising (rather than only setting ``pipe._interrupt``, after which diffusers skips the
    remaining steps but still decodes the latents through the VAE) frees the device immediately.
    """

    def __init__(self, step: int) -> None:
        super().__init__(f"interrupted after step {step}")
        self.step = step


def step_callback(offset: int, total: int, on_step: StepCallback | None,
                  is_cancelled: CancelCheck | None) -> Callable[..., dict[str, Any]]:
    """A `callback_on_step_end` that reports progress (step offset + i + 1 of total) and stops a
    cancelled job between two steps; every runner's pipeline call uses one."""

    def step_end(pipeline: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        done = offset + i + 1
        if on_step is not None:
            on_step(done, total)
        if is_cancelled is not None and done < total and is_cancelled():
            pipeline._interrupt = True
            raise StepsInterrupted(done)
        return tensors

    return step_end


def generators_for(seeds: list[int], device: str) -> list[torch.Generator]:
    """One generator per image, so each image's initial latents (and ancestral noise) come from its seed."""
    return [torch.Generator(device).manual_seed(seed) for seed in seeds]


def prompt_arguments(request: GenerationRequest, prompt: Mapping[str, Any] | None) -> dict[str, Any]:
    """The prompt part of a pipeline call: what inference.prompts.encode made (strings, or
    embeddings for weighted and long prompts), else the request's strings as they are."""
    if prompt is not None:
        return dict(prompt)
    return {"prompt": request.prompt, "negative_prompt": request.negative_prompt or None}


def run(pipe: DiffusionPipeline, request: GenerationRequest, **options: Any) -> list[np.ndarray]:
    """Run a text-to-image job; ``options`` as ``calls`` takes them. Images come back as uint8 arrays
    (inference/finishing.py)."""
    return calls(pipe, request, steps=request.steps, output_type="pt", width=request.width, height=request.height,
                 num_inference_steps=request.steps, **options)


def calls(pipe: DiffusionPipeline, request: GenerationRequest, *, steps: int, guidance: float, device: str,
          output_type: str, on_step: StepCallback | None = None, is_cancelled: CancelCheck | None = None,
          batch: bool = False, prompt: Mapping[str, Any] | None = None, **arguments: Any) -> list[Any]:
    """A job's pipeline calls, each with ``arguments`` and ``steps`` denoising steps; raises
    StepsInterrupted when ``is_cancelled`` turns true.

    By default each image is its own pipeline call with batch size 1. Batched matrix products
    round differently from single ones (off by one in a few pixels on CPU), and the product
    promises that image i of a job is, bit for bit, what seed + i gives alone. ``batch=True``
    trades that for throughput: one call, one generator per image. Progress counts the steps of
    all calls: ``on_step(k, steps * calls)``. ``prompt`` is the job's encoded prompt
    (inference.prompts.encode), computed once for all the calls. The engine asks for one call
    where that gives the same images (inference/engine.py).
    """
    seeds = request.seeds()
    groups = [seeds] if batch else [[seed] for seed in seeds]
    total = steps * len(groups)
    images: list[Any] = []
    for index, group in enumerate(groups):
        output = pipe(
            **prompt_arguments(request, prompt),
            **arguments,
            guidance_scale=guidance,
            num_images_per_prompt=len(group),
            generator=generators_for(group, device),
            callback_on_step_end=step_callback(index * steps, total, on_step, is_cancelled),
            output_type=output_type,
        )
        images.extend(to_uint8(output.images) if output_type == "pt" else output.images)
    return images
