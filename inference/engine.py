"""The blocking entry point a device worker calls: one request in, finished PNGs out.

An Engine belongs to one device and is driven by that device's single worker thread, so it never
runs one pipeline object in two threads. It validates the request against the model's limits,
picks the runner for the model's kind, and turns the images into the files users receive
(A1111 parameters, AI-generated markers, a grid for multi-image jobs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline

from inference import batching, checkpoints, hub, lora, memory, prompts, recovery
from inference import compile as compiling
from inference.cache import ModelCache
from inference.finishing import Finishing, as_pil, to_uint8
from inference.media import a1111_parameters, decode_job_image, encode_png, make_grid
from inference.models import (
    ASPECTS,
    SCHEDULERS,
    ModelRegistry,
    ModelSpec,
    RequestRefused,
    validate_request_options,
)
from inference.runners import HANDLERS, img2img, img2vid, txt2img, upscale
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled
from inference.video import encode_video

log = logging.getLogger(__name__)

Runner = Callable[..., list[Any]]

# Pipeline kind -> runner module function. One file per kind; SD and SDXL share txt2img.
RUNNERS: dict[str, Runner] = {
    "sd15": txt2img.run,
    "sdxl": txt2img.run,
    "sdxl-lightning": txt2img.run,
    "sdxl-turbo": txt2img.run,
}

# Kinds whose text-to-image pipeline can also run image-to-image (derived with from_pipe).
IMG2IMG_KINDS = frozenset({"sd15", "sdxl", "sdxl-lightning", "sdxl-turbo"})
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0
UPSCALE_FACTORS = (2, 4)
# Input pixel caps per factor: x4 of 1024x1024 is a 16.8 MP result, x2 of 2048x2048 the same.
UPSCALE_MAX_INPUT = {2: 2048 * 2048, 4: 1024 * 1024}
FPS_RANGE = (3, 30)
MOTION_RANGE = (1, 255)


def frame_limits(spec: ModelSpec) -> tuple[int, int]:
    """(default frames, most frames) of a video model: its trained count unless the registry says more."""
    frames = int(spec.extra.get("frames", 14))
    return frames, int(spec.extra.get("max_frames", frames))


class Engine:
    """Runs generation requests on one device with models from a registry."""

    def __init__(
        self,
        registry: ModelRegistry,
        device: str = "cpu",
        cache: ModelCache | None = None,
        *,
        batch_images: bool = False,
        lora_dir: Path | str | None = None,
        batch_max: int = 4,
        lora_cache: int = lora.DEFAULT_CACHE,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
    ) -> None:
        self.registry = registry
        self.device = device
        self.cache = cache if cache is not None else ModelCache()
        # False: one pipeline call per image, so every image is bit-identical to its seed run
        # alone (see runners/txt2img.py); True: one batched call, faster on big GPUs.
        self.batch_images = batch_images
        # Most images one pipeline call may carry for jobs batched together (run_batch); above 1,
        # on a CPU device, the text-to-image pipelines are made batch-invariant
        # (inference/batching.py), so a lone job and the same job in a batch give identical
        # images. CUDA keeps plain layers: batched images are near-identical (last bits).
        self.batch_max = max(1, int(batch_max))
        # (model name) -> loaded upscaler network.
        self._upscalers: dict[str, upscale.RRDBNet] = {}
        # (model name) -> its img2img pipeline, sharing the resident pipeline's modules.
        self._img2img: dict[str, tuple[DiffusionPipeline, DiffusionPipeline]] = {}
        # The LoRA folder of this machine (a remote worker has its own; bot/engines.py passes the
        # setting); None turns LoRAs off and jobs naming one fail with that reason.
        self.loras = lora.LoraLibrary(lora_dir) if lora_dir else None
        # LoRAs kept loaded per pipeline, switched on per job (0: load and unload every job).
        self.adapters = lora.AdapterCache(lora_cache)
        # ATELIER_COMPILE (inference/compile.py): None -> regional on CUDA, off on CPU.
        self.compile_mode = compiling.resolve(compile_mode, device)
        self.compile_backend = compile_backend
        # Shapes still to compile, (model, width, height, count): run between jobs (warm_up_step).
        self.warm_up: list[tuple[str, int, int, int]] = []

    def pipeline(self, spec: ModelSpec | str) -> DiffusionPipeline:
        """The resident pipeline for a model on this engine's device (benchmarks call it directly)."""
        if isinstance(spec, str):
            spec = self.registry.get(spec)
        pipe = self.cache.get(spec, self.device)
        if self.batch_max > 1 and spec.kind in RUNNERS and batching.applies_to(self.device):
            batching.make_batch_invariant(pipe, self.device)
        if spec.kind in RUNNERS:
            # Fused QKV would hide the attention projections LoRAs are trained on.
            compiling.optimize(pipe, self.compile_mode, self.device, backend=self.compile_backend,
                               fuse_qkv=self.loras is None)
        return pipe

    def preload(self, name: str) -> None:
        """Load a model before the first job needs it (workers call this at start-up); when it is
        compiled, plan its warm-up over the registry's aspect sizes at batch 1 and 2."""
        self.pipeline(name)
        spec = self.registry.get(name)
        if self.compile_mode != "off" and spec.kind in RUNNERS:
            sizes = dict.fromkeys(spec.size_for_aspect(aspect) for aspect in ASPECTS)
            self.plan_warm_up(name, list(sizes))

    def plan_warm_up(self, name: str, sizes: list[tuple[int, int]]) -> None:
        self.warm_up += [(name, width, height, count) for width, height in sizes for count in (1, 2)]

    def warm_up_step(self) -> bool:
        """Run the next planned warm-up shape (one denoising step), so no member's job waits for its
        compilation; the worker calls this only while it has no job. Returns whether more remain."""
        if not self.warm_up:
            return False
        name, width, height, count = self.warm_up.pop(0)
        spec = self.registry.get(name)
        try:
            self.run(GenerationRequest(job_id=0, model=name, prompt="warm-up", width=width, height=height,
                                       steps=1, guidance=spec.guidance, count=count))
        except Exception:  # a shape the model refuses is not worth a failed start
            log.exception("warm-up of %s at %dx%d x%d failed", name, width, height, count)
        return bool(self.warm_up)

    def run(
        self,
        request: GenerationRequest,
        on_step: Callable[[int, int], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> GenerationResult:
        """Generate ``request.count`` images; blocking, on the caller's (the device worker's) thread.

        ``on_step(step, total)`` is called after every denoising step; when ``is_cancelled()``
        turns true between steps the run stops and JobCancelled(job_id, step) is raised.
        Raises UnknownModel and RequestRefused for requests the model cannot serve, and OutOfMemory
        when the job does not fit even after the recovery steps (inference/recovery.py).
        """
        return self.generate(request, on_step, is_cancelled).finish()

    def generate(
        self,
        request: GenerationRequest,
        on_step: Callable[[int, int], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
    ) -> Finishing:
        """``run``'s device work only: the worker calls ``finish()`` on another thread, so the device
        starts its next job while this one's files are made (inference/finishing.py)."""
        spec = self.registry.get(request.model)
        names = self.models_of(spec)
        with self.cache.pinned(self.device, names):
            return recovery.recovering(self.cache, self.device, request, names,
                                       lambda: self._run_once(spec, request, on_step, is_cancelled))

    def models_of(self, spec: ModelSpec) -> list[str]:
        """The registry models a job on ``spec`` uses (a ControlNet's base, IF's stage III): pinned while it runs."""
        names = [spec.name, *([spec.base] if spec.base else [])]
        stage_3 = spec.extra.get("stage_3")
        if isinstance(stage_3, str) and stage_3 in self.registry:
            names.append(stage_3)
        return names

    def _run_once(
        self,
        spec: ModelSpec,
        request: GenerationRequest,
        on_step: Callable[[int, int], None] | None,
        is_cancelled: Callable[[], bool] | None,
    ) -> Finishing:
        handler = HANDLERS.get(spec.kind)
        if handler is not None:
            return Finishing.done(handler(self, spec, request, on_step, is_cancelled))
        if request.task == "upscale" or spec.kind == "esrgan":
            return Finishing.done(self._upscale(spec, request, on_step, is_cancelled))
        if request.task == "img2vid" or spec.kind == "svd":
            return Finishing.done(self._img2vid(spec, request, on_step, is_cancelled))
        guidance = self._check(spec, request)
        if is_cancelled is not None and is_cancelled():
            raise JobCancelled(request.job_id, 0)
        pipe = self.pipeline(spec)
        job_loras = lora.prepare(self.loras, request.loras, kind=spec.kind, model=spec.name,
                                 model_width=int(pipe.unet.config.cross_attention_dim))
        runner = RUNNERS[spec.kind]
        if request.task == "img2img":
            runner = img2img.run
        run_spec, previous_scheduler = self._use_scheduler(spec, pipe, request.scheduler)
        started = time.perf_counter()
        try:
            # The LoRAs live in modules other pipelines share (img2img, SDXL-Lightning's text
            # encoders): applied for this job only, removed before the next one starts.
            with self.adapters.applied(pipe, job_loras, model=spec.name):
                # Encoded once per job (not per image) with the LoRA's text-encoder layers active.
                encoded = prompts.encode(pipe, request.prompt, request.negative_prompt, guidance=guidance,
                                         device=self.device, clip_skip=spec.clip_skip)
                run_pipe = self._img2img_pipeline(spec, pipe) if request.task == "img2img" else pipe
                one_call = request.task == "txt2img" and self.one_call_for_count(pipe, job_loras)
                images = runner(
                    run_pipe,
                    request,
                    guidance=guidance,
                    device=self.device,
                    on_step=on_step,
                    is_cancelled=is_cancelled,
                    batch=self.batch_images or one_call,
                    prompt=encoded.kwargs,
                )
        except txt2img.StepsInterrupted as stop:
            log.info("job %s cancelled after step %d", request.job_id, stop.step)
            raise JobCancelled(request.job_id, stop.step) from None
        finally:
            if previous_scheduler is not None:
                pipe.scheduler = previous_scheduler
        run_seconds = time.perf_counter() - started
        return Finishing(request.job_id, partial(self._result, run_spec, request, guidance, images, run_seconds,
                                                 loras=job_loras, notes=encoded.notes))

    def one_call_for_count(self, pipe: DiffusionPipeline, job_loras: list[lora.JobLora]) -> bool:
        """Whether a job's ``count`` images run as one pipeline call (one generator per image)
        rather than one call each: where that gives each image as its seed alone gives it.

        On CPU that holds once the pipeline is batch-invariant, and not with a LoRA's own
        (unpatched) layers in the UNet; on CUDA the plain layers make it near-identical, as for
        batched jobs (inference/batching.py), and one call is what the device is for."""
        if not batching.applies_to(self.device):
            return True
        return batching.is_batch_invariant(pipe) and not job_loras

    def run_batch(
        self,
        requests: list[GenerationRequest],
        on_step: Callable[[int, int, int], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[GenerationResult | BaseException]:
        """``generate_batch`` with every job's files made at once (see there)."""
        return [outcome.finish() if isinstance(outcome, Finishing) else outcome
                for outcome in self.generate_batch(requests, on_step, is_cancelled)]

    def generate_batch(
        self,
        requests: list[GenerationRequest],
        on_step: Callable[[int, int, int], None] | None = None,
        is_cancelled: Callable[[int], bool] | None = None,
    ) -> list[Finishing | BaseException]:
        """Run compatible text-to-image jobs (equal ``batch_key()``) as few pipeline calls as possible.

        Returns, per request and in order, its finishing result or the exception it alone raised (bad
        options, cancellation); the others are unaffected. Each image is bit for bit what its job gives
        alone on CPU, near-identical on CUDA (inference/batching.py). Jobs whose prompts encode to different lengths (long prompts) go in
        separate calls. ``on_step(job_id, step, total)``; ``is_cancelled(job_id)``: a cancelled job's
        images are dropped, and the call stops early once every job in it is cancelled.
        """
        if len(requests) == 1:
            request = requests[0]
            try:
                return [self.generate(request, (lambda s, t: on_step(request.job_id, s, t)) if on_step else None,
                                      (lambda: is_cancelled(request.job_id)) if is_cancelled else None)]
            except Exception as exc:  # the worker reports it as this job's failure
                return [exc]
        keys = {request.batch_key() for request in requests}
        if None in keys or len(keys) != 1:
            raise ValueError(f"jobs {[r.job_id for r in requests]} cannot share a pipeline call")
        outcome: dict[int, Finishing | BaseException] = {}
        spec = self.registry.get(requests[0].model)
        ready: list[tuple[GenerationRequest, float]] = []
        for request in requests:
            try:
                ready.append((request, self._check(spec, request)))
            except Exception as exc:
                outcome[request.job_id] = exc
        if ready:
            with self.cache.pinned(self.device, self.models_of(spec)):
                self._run_batched(spec, ready, outcome, on_step, is_cancelled)
        for request, _ in ready:  # a batch that ran out of memory: each job again alone, with recovery
            if isinstance(outcome.get(request.job_id), Exception) and memory.is_out_of_memory(outcome[request.job_id]):
                del outcome[request.job_id]
                memory.release_cached(self.device)
                try:
                    outcome[request.job_id] = self.run(
                        request, (lambda s, t, i=request.job_id: on_step(i, s, t)) if on_step else None,
                        (lambda i=request.job_id: is_cancelled(i)) if is_cancelled else None)
                except Exception as exc:
                    outcome[request.job_id] = exc
        return [outcome[request.job_id] for request in requests]

    def _run_batched(self, spec: ModelSpec, ready: list[tuple[GenerationRequest, float]],
                     outcome: dict[int, Finishing | BaseException],
                     on_step: Callable[[int, int, int], None] | None,
                     is_cancelled: Callable[[int], bool] | None) -> None:
        pipe = self.pipeline(spec)
        first, guidance = ready[0]
        run_spec, previous_scheduler = self._use_scheduler(spec, pipe, first.scheduler)
        try:
            # Each job's prompt is encoded alone (as in a lone run), then grouped by embedding shape.
            groups: dict[tuple[Any, ...], list[tuple[GenerationRequest, dict[str, Any], list[str]]]] = {}
            for request, _ in ready:
                encoded = prompts.encode(pipe, request.prompt, request.negative_prompt, guidance=guidance,
                                         device=self.device, clip_skip=spec.clip_skip)
                rows = batching.prompt_rows(pipe, encoded.kwargs, guidance=guidance, device=self.device)
                groups.setdefault(batching.shape_key(rows), []).append((request, rows, encoded.notes))
            for members in groups.values():
                self._batched_call(run_spec, pipe, guidance, members, outcome, on_step, is_cancelled)
        finally:
            if previous_scheduler is not None:
                pipe.scheduler = previous_scheduler

    def _use_scheduler(self, spec: ModelSpec, pipe: DiffusionPipeline, scheduler: str | None
                       ) -> tuple[ModelSpec, Any]:
        """Put the job's scheduler on ``pipe`` when it asks for another than the model's; returns the
        spec as run and the scheduler to put back afterwards (None: nothing to restore)."""
        if not scheduler or scheduler == spec.scheduler:
            return spec, None
        run_spec = replace(spec, scheduler=scheduler)
        previous = pipe.scheduler
        pipe.scheduler = self.cache.scheduler_for(run_spec, self.device)
        return run_spec, previous

    def _batched_call(self, spec: ModelSpec, pipe: DiffusionPipeline, guidance: float,
                      members: list[tuple[GenerationRequest, dict[str, Any], list[str]]],
                      outcome: dict[int, Finishing | BaseException],
                      on_step: Callable[[int, int, int], None] | None,
                      is_cancelled: Callable[[int], bool] | None) -> None:
        first = members[0][0]
        ids = [request.job_id for request, _, _ in members]
        cancelled = is_cancelled or (lambda _job_id: False)
        per_image = [rows for request, rows, _ in members for _seed in request.seeds()]
        seeds = [seed for request, _, _ in members for seed in request.seeds()]

        def step_end(pipeline: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            for job_id in ids:
                if on_step is not None:
                    on_step(job_id, i + 1, first.steps)
            if i + 1 < first.steps and all(cancelled(job_id) for job_id in ids):
                pipeline._interrupt = True
                raise txt2img.StepsInterrupted(i + 1)
            return tensors

        started = time.perf_counter()
        try:
            output = pipe(
                **batching.stack(per_image),
                width=first.width,
                height=first.height,
                num_inference_steps=first.steps,
                guidance_scale=guidance,
                num_images_per_prompt=1,
                generator=txt2img.generators_for(seeds, self.device),
                callback_on_step_end=step_end,
                output_type="pt",
            )
        except txt2img.StepsInterrupted as stop:
            for job_id in ids:
                outcome[job_id] = JobCancelled(job_id, stop.step)
            return
        except Exception as exc:  # e.g. out of memory: every job of the call fails with it
            for job_id in ids:
                outcome[job_id] = exc
            return
        run_seconds = (time.perf_counter() - started) / len(members)
        images = iter(to_uint8(output.images))
        for request, _rows, notes in members:
            mine = [next(images) for _ in range(request.count)]
            if cancelled(request.job_id):
                outcome[request.job_id] = JobCancelled(request.job_id, request.steps)
                continue
            outcome[request.job_id] = Finishing(request.job_id, partial(self._result, spec, request, guidance, mine,
                                                                        run_seconds, loras=[], notes=notes))

    def upscaler(self, spec: ModelSpec) -> upscale.RRDBNet:
        """The resident upscaler network for ``spec`` (loaded on first use, like pipelines)."""
        model = self._upscalers.get(spec.name)
        if model is None:
            source = Path(spec.source)
            if not source.is_file():
                if not spec.extra.get("file"):
                    raise RequestRefused(f"{spec.name}: source must be a .pth/.safetensors file or a hub repo with `file`")
                source = hub.fetch_file(spec.name, spec.source, str(spec.extra["file"]))
            model = upscale.load(source, self.device)
            self._upscalers[spec.name] = model
        return model

    def _upscale(
        self,
        spec: ModelSpec,
        request: GenerationRequest,
        on_step: Callable[[int, int], None] | None,
        is_cancelled: Callable[[], bool] | None,
    ) -> GenerationResult:
        if spec.kind != "esrgan" or request.task != "upscale":
            raise RequestRefused(f"{spec.name} is a {spec.kind} model; it cannot run a {request.task} job")
        if request.scale not in UPSCALE_FACTORS:
            raise RequestRefused(f"Scale must be 2 or 4; you asked for {request.scale}")
        if not request.init_image:
            raise RequestRefused("Upscaling needs an input image")
        image = decode_job_image(request.init_image)
        limit = int(spec.extra.get("max_input", UPSCALE_MAX_INPUT[request.scale]))
        if image.width * image.height > limit:
            raise RequestRefused(
                f"x{request.scale} upscaling takes images up to {limit / 1e6:.1f} MP; this one is "
                f"{image.width}x{image.height}"
            )
        if is_cancelled is not None and is_cancelled():
            raise JobCancelled(request.job_id, 0)
        model = self.upscaler(spec)
        started = time.perf_counter()
        try:
            result = upscale.upscale(model, image, device=self.device, tile=int(spec.extra.get("tile", upscale.DEFAULT_TILE)),
                                     on_tile=on_step, is_cancelled=is_cancelled)
        except txt2img.StepsInterrupted as stop:
            raise JobCancelled(request.job_id, stop.step) from None
        result = upscale.fit_scale(result, model.scale, request.scale)
        run_seconds = time.perf_counter() - started
        # A1111's extras keys, after the source image's own parameters when the bot passed them.
        base = str(request.extra.get("parameters") or "").strip()
        line = f"Postprocess upscale by: {request.scale}, Postprocess upscaler: {spec.name}"
        text = f"{base}, {line}" if base else line
        png = encode_png(result, text)
        return GenerationResult(
            job_id=request.job_id,
            images=[GeneratedImage(png, request.seed, result.width, result.height)],
            grid_png=None,
            run_seconds=run_seconds,
            parameters=text,
        )

    def _img2vid(
        self,
        spec: ModelSpec,
        request: GenerationRequest,
        on_step: Callable[[int, int], None] | None,
        is_cancelled: Callable[[], bool] | None,
    ) -> GenerationResult:
        if spec.kind != "svd" or request.task != "img2vid":
            raise RequestRefused(f"{spec.name} is a {spec.kind} model; it cannot run a {request.task} job")
        default_frames, max_frames = frame_limits(spec)
        if request.frames == 0:
            request = replace(request, frames=default_frames)
        if not 2 <= request.frames <= max_frames:
            raise RequestRefused(f"Frames must be 2-{max_frames} for {spec.name}; you asked for {request.frames}")
        if not FPS_RANGE[0] <= request.fps <= FPS_RANGE[1]:
            raise RequestRefused(f"FPS must be {FPS_RANGE[0]}-{FPS_RANGE[1]}; you asked for {request.fps}")
        if not MOTION_RANGE[0] <= request.motion <= MOTION_RANGE[1]:
            raise RequestRefused(f"Motion must be {MOTION_RANGE[0]}-{MOTION_RANGE[1]}; you asked for {request.motion}")
        validate_request_options(spec, request.steps, 1, request.guidance)
        if request.width % 8 or request.height % 8 or min(request.width, request.height) < 64:
            raise RequestRefused(f"Width and height must be multiples of 8 and at least 64; you asked for "
                                f"{request.width}x{request.height}")
        if not request.init_image:
            raise RequestRefused("Animating needs an input image")
        if is_cancelled is not None and is_cancelled():
            raise JobCancelled(request.job_id, 0)
        pipe = self.pipeline(spec)
        started = time.perf_counter()
        try:
            frames = img2vid.run(pipe, request, spec, device=self.device, on_step=on_step, is_cancelled=is_cancelled)
        except txt2img.StepsInterrupted as stop:
            raise JobCancelled(request.job_id, stop.step) from None
        text = a1111_parameters(request.prompt, "", request.steps, spec.sampler, request.guidance, request.seed,
                                request.width, request.height, spec.name,
                                {"Frames": request.frames, "FPS": request.fps, "Motion bucket": request.motion})
        data, mime = encode_video(frames, request.fps, comment=text)
        run_seconds = time.perf_counter() - started
        return GenerationResult(
            job_id=request.job_id,
            images=[GeneratedImage(data, request.seed, frames[0].width, frames[0].height, mime=mime)],
            grid_png=None,
            run_seconds=run_seconds,
            parameters=text,
        )

    def _img2img_pipeline(self, spec: ModelSpec, base: DiffusionPipeline) -> DiffusionPipeline:
        """The img2img pipeline over ``base``'s modules, running ``base``'s current scheduler."""
        cached = self._img2img.get(spec.name)
        if cached is None or cached[0] is not base:
            cached = (base, img2img.derive(base))
            self._img2img[spec.name] = cached
        derived = cached[1]
        derived.scheduler = base.scheduler
        return derived

    def _check(self, spec: ModelSpec, request: GenerationRequest) -> float:
        """Refuse what the model cannot do; returns the guidance the model will actually use.

        Distilled models (Lightning, Turbo) were trained without classifier-free guidance: any
        guidance would only double the work and burn the image, so they always run at 0 and the
        parameters record 0.
        """
        validate_request_options(spec, request.steps, request.count, request.guidance)
        if request.width % 8 or request.height % 8 or request.width < 64 or request.height < 64:
            raise RequestRefused(
                f"Width and height must be multiples of 8 and at least 64; you asked for {request.width}x{request.height}"
            )
        if not request.prompt.strip():
            raise RequestRefused("The prompt is empty")
        if request.scheduler and request.scheduler not in SCHEDULERS:
            raise RequestRefused(
                f"Unknown scheduler {request.scheduler!r}; valid schedulers: {', '.join(SCHEDULERS)}"
            )
        if request.task == "img2img":
            if spec.kind not in IMG2IMG_KINDS:
                raise RequestRefused(f"{spec.name} cannot transform an image")
            if not request.init_image:
                raise RequestRefused("Image-to-image needs an input image")
            if not MIN_STRENGTH <= request.strength <= MAX_STRENGTH:
                raise RequestRefused(
                    f"Strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}; you asked for {request.strength:g}"
                )
        elif request.task != "txt2img":
            raise RequestRefused(f"Task {request.task!r} is not supported by {spec.name}")
        return 0.0 if spec.few_step else float(request.guidance)

    def _result(
        self,
        spec: ModelSpec,
        request: GenerationRequest,
        guidance: float,
        images: list[Any],
        run_seconds: float,
        *,
        loras: list[lora.JobLora] | None = None,
        notes: list[str] | None = None,
    ) -> GenerationResult:
        extra: dict[str, Any] = {"Schedule type": spec.schedule_type} if spec.schedule_type else {}
        if spec.clip_skip > 1:
            extra["Clip skip"] = spec.clip_skip
        if str(spec.extra.get("vae", "")).endswith(".safetensors"):
            extra["VAE"] = Path(str(spec.extra["vae"])).name
        # A1111's short hash of the checkpoint file, which Civitai matches to the model's page.
        model_hash = checkpoints.short_hash(Path(spec.source)) if spec.single_file else None
        if request.task == "img2img":
            # A1111's key for img2img strength, so PNG Info and Civitai show it.
            extra["Denoising strength"] = f"{request.strength:g}"
        prompt = request.prompt
        if loras:
            # A1111 names LoRAs in the prompt (<lora:name:weight>) and lists their hashes, which
            # Civitai matches to its resources (AutoV3).
            prompt += "".join(f" <lora:{item.name}:{item.weight:g}>" for item in loras)
            extra["Lora hashes"] = ", ".join(f"{item.name}: {lora.short_hash(item.file.path)}" for item in loras)
        images = as_pil(images)  # uint8 arrays from the device, made into images here, off its thread
        generated: list[GeneratedImage] = []
        texts: list[str] = []
        for image, seed in zip(images, request.seeds(), strict=True):
            text = a1111_parameters(
                prompt,
                request.negative_prompt,
                request.steps,
                spec.sampler,
                guidance,
                seed,
                image.width,
                image.height,
                spec.name,
                extra,
                model_hash=model_hash,
            )
            texts.append(text)
            generated.append(GeneratedImage(encode_png(image, text), seed, image.width, image.height))
        grid = encode_png(make_grid(images), texts[0]) if len(images) > 1 else None
        return GenerationResult(
            job_id=request.job_id,
            images=generated,
            grid_png=grid,
            run_seconds=run_seconds,
            parameters=texts[0],
            notes=list(notes or []),
        )


def default_device() -> str:
    """The first CUDA device when there is one, else the CPU."""
    return "cuda:0" if torch.cuda.is_available() else "cpu"
