"""Hires fix (A1111's two passes) for the SD 1.5 and SDXL families: ``/imagine hires:1.5|2``.

Pass 1 draws the image at ``width`` x ``height`` (the model's size). It is then enlarged by
``hires`` to the final size (each side rounded down to a multiple of 8) with ``hires_upscaler``:

- ``"latent"``: the first pass's latents are interpolated (bilinear, A1111's "Latent"), no decode;
- a Real-ESRGAN registry entry's name: the decoded image goes through that network, then Lanczos
  to the final size;
- ``""``: the registry's default upscaler (its first ``esrgan`` entry) when its weights are on this
  machine (a local file, or cached by ``atelier models pull``/an /upscale job), else plain Lanczos.

Pass 2 is image to image at ``hires_strength`` over the enlarged image, with the same prompt, seed and
sampler (and image prompt: style_ref, /blend), running ``int(steps * hires_strength)`` steps. Progress counts the steps of both passes and a
cancel stops either. The PNG records the first pass's ``Size`` and A1111's ``Denoising strength``,
``Hires upscale`` and ``Hires upscaler``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from diffusers import DiffusionPipeline
from PIL import Image

from inference import hub
from inference.limits import HIRES_FACTORS, MAX_CANVAS_SIDE, MAX_STRENGTH, MIN_STRENGTH, SIZE_MULTIPLE
from inference.models import ModelSpec, RequestRefused
from inference.runners import upscale
from inference.runners.img2img import schedule
from inference.runners.txt2img import CancelCheck, StepCallback, calls
from inference.types import GenerationRequest, JobCancelled

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

LATENT = "latent"
# What the PNG names when no upscaler network is used (A1111's spellings).
LATENT_NAME, LANCZOS_NAME = "Latent", "Lanczos"


def final_size(request: GenerationRequest) -> tuple[int, int]:
    """The delivered size: the first pass's times ``hires``, each side down to a multiple of 8."""
    return tuple(int(side * request.hires) // SIZE_MULTIPLE * SIZE_MULTIPLE  # type: ignore[return-value]
                 for side in (request.width, request.height))


def check(engine: Engine, request: GenerationRequest) -> ModelSpec | None:
    """Refuse a hires request that cannot run; returns the upscaler entry it names (None: latent or Lanczos)."""
    if request.task != "txt2img":
        raise RequestRefused("Hires fix applies to text-to-image jobs only")
    if request.hires not in HIRES_FACTORS:
        raise RequestRefused(f"Hires upscale must be {' or '.join(f'{f:g}' for f in HIRES_FACTORS)}; you asked for "
                             f"{request.hires:g}")
    if not (math.isfinite(request.hires_strength) and MIN_STRENGTH <= request.hires_strength <= MAX_STRENGTH):
        raise RequestRefused(f"Hires strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}; you asked for "
                             f"{request.hires_strength:g}")
    if max(final_size(request)) > MAX_CANVAS_SIDE:
        raise RequestRefused(f"Hires fix would make a {'x'.join(map(str, final_size(request)))} image; the largest "
                             f"side is {MAX_CANVAS_SIDE} px")
    name = request.hires_upscaler
    if name == LATENT:
        return None
    esrgans = [spec for spec in engine.registry.specs() if spec.kind == "esrgan"]
    if not name:
        installed = [spec for spec in esrgans[:1] if is_installed(spec, engine.device)]
        return installed[0] if installed else None
    for spec in esrgans:
        if spec.name == name:
            return spec
    raise RequestRefused(f"Unknown hires upscaler {name!r}; valid: {', '.join([LATENT, *(s.name for s in esrgans)])}")


def is_installed(spec: ModelSpec, device: str) -> bool:
    """Whether an upscaler's weights are on this machine (nothing to download)."""
    return all(download.cached() for download in hub.downloads_for(spec, device))


def run(engine: Engine, pipe: DiffusionPipeline, variation: DiffusionPipeline, request: GenerationRequest,
        upscaler: ModelSpec | None, *, guidance: float, on_step: StepCallback | None,
        is_cancelled: CancelCheck | None, batch: bool, prompt: Mapping[str, Any] | None, **image_prompt: Any
        ) -> tuple[list[Image.Image], dict[str, Any]]:
    """Both passes for every image of the job; returns the images and the PNG's hires keys.

    ``pipe`` is the resident text-to-image pipeline, ``variation`` the img2img one over it. The first
    pass runs as txt2img does (one call, or one per image); the second runs once per image, each with
    its own seed's noise, so image i is what seed + i gives alone. ``image_prompt``: the job's
    IP-Adapter embeds (``ip_adapter_image_embeds``, /imagine style_ref), given to both passes: the
    adapter sits in the UNet both pipelines share, so the second pass keeps the style too."""
    latent = request.hires_upscaler == LATENT
    width, height = final_size(request)
    num_steps, second = schedule(request.steps, request.hires_strength)
    first_total = request.steps * (1 if batch else request.count)
    total = first_total + second * request.count

    def progress(offset: int) -> StepCallback:
        def report(done: int, _total: int) -> None:
            if on_step is not None:
                on_step(offset + done, total)
        return report

    first = calls(pipe, request, steps=request.steps, guidance=guidance, device=engine.device,
                  output_type="latent" if latent else "pil", on_step=progress(0), is_cancelled=is_cancelled,
                  batch=batch, prompt=prompt, width=request.width, height=request.height,
                  num_inference_steps=request.steps, **image_prompt)
    if is_cancelled is not None and is_cancelled():
        raise JobCancelled(request.job_id, first_total)
    if latent:
        # A1111's "Latent": bilinear, without antialiasing, on the latent grid of the final size.
        inputs: list[Any] = [F.interpolate(item[None].float(), size=(height // 8, width // 8), mode="bilinear",
                                           antialias=False).to(item.dtype) for item in first]
        name = LATENT_NAME
    else:
        inputs = [enlarge(engine, image, upscaler, (width, height), is_cancelled) for image in first]
        name = upscaler.name if upscaler is not None else LANCZOS_NAME
    images: list[Image.Image] = []
    for index, (image, seed) in enumerate(zip(inputs, request.seeds(), strict=True)):
        images += calls(variation, replace(request, seed=seed, count=1), steps=second, guidance=guidance,
                        device=engine.device, output_type="pil", on_step=progress(first_total + index * second),
                        is_cancelled=is_cancelled, prompt=prompt, image=image, strength=request.hires_strength,
                        num_inference_steps=num_steps, **image_prompt)
    extra = {"Denoising strength": f"{request.hires_strength:g}", "Hires upscale": f"{request.hires:g}",
             "Hires upscaler": name}
    return images, extra


def enlarge(engine: Engine, image: Image.Image, upscaler: ModelSpec | None, size: tuple[int, int],
            is_cancelled: CancelCheck | None) -> Image.Image:
    """A decoded first-pass image at ``size``: through the upscaler network when there is one, then Lanczos."""
    if upscaler is not None:
        model = engine.upscaler(upscaler)
        image = upscale.upscale(model, image, device=engine.device, is_cancelled=is_cancelled,
                                tile=int(upscaler.extra.get("tile", upscale.DEFAULT_TILE)))
    return image.resize(size, Image.Resampling.LANCZOS) if image.size != size else image
