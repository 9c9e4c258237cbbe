"""Text to image guided by a ControlNet (OpenPose for /pose), over a resident SD 1.5/2.x or SDXL pipeline.

A ``controlnet`` registry entry names its ControlNet weights (``source``) and the text-to-image model
it draws with (``base``). The ControlNet pipeline is built with ``from_pipe`` over that model's
resident pipeline, so the UNet, VAE and text encoders exist once in memory whether a job asks for
/imagine or /pose; only the ControlNet (~360 MB for SD 1.5, ~2.5 GB for SDXL) is added. It gets its
own scheduler object, because the base pipeline's is per-call state.

The control image arrives as a skeleton already (a preset drawn by bot/params/pose_presets.py, or one the member
attached); a photo is turned into one here by controlnet_aux's OpenposeDetector when the operator
installed it and its annotator weights (``detector`` in the registry entry), because the detector
needs torch. Variations of a pose result (img2img) keep the pose: they run the ControlNet img2img
pipeline with the same control image.

The result carries two files' worth of pictures: each image stays the pure output with its A1111
parameters (``ControlNet 0: ...`` as the sd-webui-controlnet extension writes it), and the file the
bot posts (``grid_png``) shows the skeleton that was used beside the image(s).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from diffusers import (
    ControlNetModel,
    DiffusionPipeline,
    StableDiffusionControlNetPipeline,
    StableDiffusionXLControlNetPipeline,
)
from PIL import Image, ImageOps

from inference import prompts
from inference.cache import make_scheduler
from inference.limits import MAX_CONTROL_SCALE, MIN_CONTROL_SCALE
from inference.media import a1111_parameters, decode_job_image, encode_png, make_grid
from inference.models import ModelSpec, RequestRefused, detector_problem, validate_request_options
from inference.runners import img2img
from inference.runners.base import (
    cancellable,
    check_img2img,
    check_scheduler,
    check_size,
    job_scheduler,
    stop_if_cancelled,
)
from inference.runners.txt2img import generators_for, step_callback
from inference.types import GeneratedImage, GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

# Detected poses: the annotator's default working resolution.
DETECT_RESOLUTION = 512

# (detector folder, device) -> OpenposeDetector; one per worker, loaded on first use.
_detectors: dict[tuple[str, str], Any] = {}


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest,
           on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The runner of ``controlnet`` models."""
    base = engine.registry.get(str(spec.base))
    guidance = check(spec, base, request)
    control = control_image(spec, request, engine.device)
    stop_if_cancelled(request, is_cancelled)
    pipe = pipeline(engine, spec, base)
    started = time.perf_counter()
    with job_scheduler(engine, spec, pipe, request.scheduler, config_of=base) as run_spec, cancellable(request):
        # A1111 emphasis and long prompts, as in /imagine (the ControlNet pipelines take the same
        # text encoders and embeddings); plain prompts stay strings.
        encoded = prompts.encode(pipe, request.prompt, request.negative_prompt, guidance=guidance, device=engine.device,
                                  clip_skip=base.clip_skip)
        if request.task == "img2img":
            images = _img2img(engine, spec, pipe, request, control, guidance, on_step, is_cancelled, encoded.kwargs)
        else:
            images = _txt2img(pipe, request, control, guidance, engine.device, on_step, is_cancelled, encoded.kwargs)
    done = result(run_spec, base, request, guidance, images, control, time.perf_counter() - started)
    done.notes = list(encoded.notes)
    return done


def check(spec: ModelSpec, base: ModelSpec, request: GenerationRequest) -> float:
    """Refuse what the ControlNet job cannot do; returns the guidance it will run at (0 over a
    distilled base such as Lightning or Turbo, which were trained without classifier-free guidance)."""
    validate_request_options(spec, request.steps, request.count, request.guidance)
    check_size(request)
    if not request.prompt.strip():
        raise RequestRefused("The prompt is empty")
    if request.task not in ("pose", "txt2img", "img2img"):
        raise RequestRefused(f"{spec.name} is a ControlNet; it cannot run a {request.task} job")
    if not request.control_image:
        raise RequestRefused(f"{spec.name} needs a control image (a pose skeleton)")
    if not (math.isfinite(request.control_scale) and MIN_CONTROL_SCALE <= request.control_scale <= MAX_CONTROL_SCALE):
        raise RequestRefused(f"ControlNet strength must be {MIN_CONTROL_SCALE:g}-{MAX_CONTROL_SCALE:g}; you asked "
                             f"for {request.control_scale:g}")
    check_scheduler(request)
    if request.task == "img2img":
        check_img2img(request)
    return 0.0 if base.few_step else float(request.guidance)


def fit_control(image: Image.Image, width: int, height: int) -> Image.Image:
    """The skeleton at the output size, letterboxed on black: cropping could cut a hand or a foot off."""
    if image.size == (width, height):
        return image
    return ImageOps.pad(image, (width, height), Image.Resampling.LANCZOS, color=(0, 0, 0))


def control_image(spec: ModelSpec, request: GenerationRequest, device: str) -> Image.Image:
    """The skeleton this job is conditioned on: as sent, or detected in the photo that was sent."""
    assert request.control_image is not None
    image = decode_job_image(request.control_image)
    if request.extra.get("pose_source") == "photo":
        image = detect_pose(spec, image, device)
    return fit_control(image, request.width, request.height)


def detect_pose(spec: ModelSpec, photo: Image.Image, device: str) -> Image.Image:
    """OpenPose skeleton of the people in ``photo`` (controlnet_aux with local annotator weights)."""
    problem = detector_problem(spec)
    if problem is not None:
        raise RequestRefused(problem)
    from controlnet_aux import OpenposeDetector

    folder = str(spec.extra["detector"])
    detector = _detectors.get((folder, device))
    if detector is None:
        detector = OpenposeDetector.from_pretrained(folder)
        if hasattr(detector, "to"):
            detector = detector.to(device)
        _detectors[(folder, device)] = detector
    skeleton = detector(photo, detect_resolution=DETECT_RESOLUTION, image_resolution=max(photo.size),
                        output_type="pil")
    if skeleton.convert("L").getbbox() is None:
        raise RequestRefused("No person was found in the photo; try one where the whole body is visible, or a preset.")
    return skeleton.convert("RGB")


def pipeline(engine: Engine, spec: ModelSpec, base: ModelSpec) -> DiffusionPipeline:
    """The ControlNet pipeline over the base model's resident pipeline (shared modules, own scheduler)."""
    base_pipe = engine.pipeline(base)
    cache = engine.cache

    def build() -> DiffusionPipeline:
        dtype = base_pipe.dtype
        options = {"variant": spec.extra["variant"]} if spec.extra.get("variant") and engine.device != "cpu" else {}
        controlnet = cache.load_part(ControlNetModel, spec.name, spec.source, engine.device, dtype, **options)
        cls = StableDiffusionXLControlNetPipeline if base.kind.startswith("sdxl") else StableDiffusionControlNetPipeline
        pipe = cls.from_pipe(base_pipe, controlnet=controlnet, dtype=dtype,
                             scheduler=make_scheduler(spec, cache.scheduler_config(base, engine.device)))
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return cache.companion((spec.name, engine.device), base_pipe, build)


def _txt2img(pipe: DiffusionPipeline, request: GenerationRequest, control: Image.Image, guidance: float, device: str,
             on_step: Callable[[int, int], None] | None, is_cancelled: Callable[[], bool] | None,
             prompt: dict[str, Any]) -> list[Image.Image]:
    """One call per image, as txt2img does: image i is what seed + i gives alone."""
    seeds = request.seeds()
    total = request.steps * len(seeds)
    images: list[Image.Image] = []
    for index, seed in enumerate(seeds):
        output = pipe(
            **prompt,
            image=control,
            controlnet_conditioning_scale=float(request.control_scale),
            width=request.width,
            height=request.height,
            num_inference_steps=request.steps,
            guidance_scale=guidance,
            generator=generators_for([seed], device),
            callback_on_step_end=step_callback(index * request.steps, total, on_step, is_cancelled),
            output_type="pil",
        )
        images.extend(output.images)
    return images


def _img2img(engine: Engine, spec: ModelSpec, pipe: DiffusionPipeline, request: GenerationRequest,
             control: Image.Image, guidance: float, on_step: Callable[[int, int], None] | None,
             is_cancelled: Callable[[], bool] | None, prompt: dict[str, Any]) -> list[Image.Image]:
    """A variation of a pose result: ControlNet img2img, same skeleton, so the pose survives."""

    derived = img2img.pipeline_over(engine, spec, pipe)
    init = img2img.prepare_image(request)
    num_steps, effective = img2img.schedule(request.steps, request.strength)
    seeds = request.seeds()
    total = effective * len(seeds)
    images: list[Image.Image] = []
    for index, seed in enumerate(seeds):
        output = derived(
            **prompt,
            image=init,
            control_image=control,
            strength=request.strength,
            controlnet_conditioning_scale=float(request.control_scale),
            num_inference_steps=num_steps,
            guidance_scale=guidance,
            generator=generators_for([seed], engine.device),
            callback_on_step_end=step_callback(index * effective, total, on_step, is_cancelled),
            output_type="pil",
        )
        images.extend(output.images)
    return images


def controlnet_info(spec: ModelSpec, request: GenerationRequest) -> str:
    """The ``ControlNet 0`` value as the sd-webui-controlnet extension writes it into A1111 parameters."""
    module = "openpose" if request.extra.get("pose_source") == "photo" else "none"
    return (f"Module: {module}, Model: {spec.name}, Weight: {request.control_scale:g}, Resize Mode: Resize and Fill, "
            f"Guidance Start: 0, Guidance End: 1, Control Mode: Balanced")


def beside(picture: Image.Image, skeleton: Image.Image) -> Image.Image:
    """The picture with the skeleton that shaped it on its right, scaled to the same height."""
    width = max(1, round(skeleton.width * picture.height / skeleton.height))
    scaled = skeleton.resize((width, picture.height), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (picture.width + width, picture.height))
    canvas.paste(picture.convert("RGB"), (0, 0))
    canvas.paste(scaled, (picture.width, 0))
    return canvas


def result(spec: ModelSpec, base: ModelSpec, request: GenerationRequest, guidance: float, images: list[Image.Image],
           control: Image.Image, run_seconds: float) -> GenerationResult:
    extra: dict[str, Any] = {"Schedule type": spec.schedule_type} if spec.schedule_type else {}
    if request.task == "img2img":
        extra["Denoising strength"] = f"{request.strength:g}"
    extra["ControlNet 0"] = controlnet_info(spec, request)
    generated: list[GeneratedImage] = []
    texts: list[str] = []
    for image, seed in zip(images, request.seeds(), strict=True):
        text = a1111_parameters(request.prompt, request.negative_prompt, request.steps, spec.sampler, guidance, seed,
                                image.width, image.height, base.name, extra)
        texts.append(text)
        generated.append(GeneratedImage(encode_png(image, text), seed, image.width, image.height))
    shown = beside(make_grid(images), control)
    return GenerationResult(job_id=request.job_id, images=generated, grid_png=encode_png(shown, texts[0]),
                            run_seconds=run_seconds, parameters=texts[0])
