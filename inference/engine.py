"""The blocking entry point a device worker calls: one request in, finished PNGs out.

An Engine belongs to one device and is driven by that device's single worker thread, so it never
runs one pipeline object in two threads. It calls the runner registered for the model's kind
(inference/runners/__init__.py), which checks the request against the model's limits, runs the
pipeline and makes the files users receive (A1111 parameters, AI-generated markers, a grid for
multi-image jobs); text-to-image jobs that fit together also run here as one batched call.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from diffusers import DiffusionPipeline

from inference import adapters, batching, embeddings, hotswap, hub, lora, memory, prompts, recovery
from inference import compile as compiling
from inference.cache import ModelCache
from inference.finishing import Finishing, to_uint8
from inference.models import ASPECTS, SD_KINDS, ModelRegistry, ModelSpec, RequestRefused
from inference.runners import RUNNERS, inpaint, sd, txt2img, upscale
from inference.runners.base import image_result, job_scheduler
from inference.training import job as training_job
from inference.training import library as training_library
from inference.types import GenerationRequest, GenerationResult, JobCancelled

log = logging.getLogger(__name__)


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
        embeddings_dir: Path | str | None = None,
        batch_max: int = 4,
        lora_cache: int = adapters.DEFAULT_CACHE,
        compile_mode: str | None = None,
        compile_backend: str = "inductor",
        train_dir: Path | str | None = None,
        member_lora_dir: Path | str | None = None,
        lora_rank: int = hotswap.DEFAULT_RANK,
        lora_slots: int = hotswap.DEFAULT_SLOTS,
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
        # The LoRA folder of this machine (a remote worker has its own; bot/engines.py passes the
        # setting); None turns LoRAs off and jobs naming one fail with that reason.
        # Members' trained LoRAs (the bot's member LoRA space) are named "member:…" beside them.
        self.loras = training_library.libraries(lora_dir, member_lora_dir)
        # Its textual-inversion embeddings (ATELIER_EMBEDDINGS_DIR), added to a pipeline for one job.
        self.embeddings = embeddings.EmbeddingLibrary(embeddings_dir) if embeddings_dir else None
        # LoRAs kept loaded per pipeline, switched on per job (0: load and unload every job).
        self.adapters = adapters.AdapterCache(lora_cache)
        # ATELIER_COMPILE (inference/compile.py): None -> regional on CUDA, off on CPU.
        self.compile_mode = compiling.resolve(compile_mode, device)
        self.compile_backend = compile_backend
        # Where LoRA training jobs keep checkpoints and write LoRAs; None: this device does not train.
        self.train_dir = Path(train_dir) if train_dir else None
        # Compiled UNets take LoRAs into fixed slots (inference/hotswap.py): LoRAs up to this rank,
        # this many a job, switch without recompiling. Eager pipelines keep plain adapters.
        self.lora_rank = max(1, int(lora_rank))
        self.lora_slots = max(0, int(lora_slots))
        # Shapes still to compile, (model, width, height, count, with a LoRA slot on): run between
        # jobs (warm_up_step).
        self.warm_up: list[tuple[str, int, int, int, bool]] = []

    def pipeline(self, spec: ModelSpec | str) -> DiffusionPipeline:
        """The resident pipeline for a model on this engine's device (benchmarks call it directly)."""
        if isinstance(spec, str):
            spec = self.registry.get(spec)
        pipe = self.cache.get(spec, self.device)
        if self.batch_max > 1 and spec.kind in SD_KINDS and batching.applies_to(self.device):
            batching.make_batch_invariant(pipe, self.device)
        if spec.kind in SD_KINDS:
            if self.hotswaps and spec.kind in lora.LORA_KINDS:  # before compiling: slots are part of the graphs
                self.adapters.install_slots(pipe, rank=self.lora_rank, count=self.lora_slots)
            # Fused QKV would hide the attention projections LoRAs are trained on.
            compiling.optimize(pipe, self.compile_mode, self.device, backend=self.compile_backend,
                               fuse_qkv=self.loras is None)
        return pipe

    @property
    def hotswaps(self) -> bool:
        """Whether LoRAs go into fixed UNet slots: compiled, with LoRAs on."""
        return self.compile_mode != "off" and self.loras is not None and self.lora_slots > 0

    def preload(self, name: str) -> None:
        """Load a model before the first job needs it (workers call this at start-up); when it is
        compiled, plan its warm-up over the registry's aspect sizes at batch 1 and 2."""
        self.pipeline(name)
        spec = self.registry.get(name)
        if self.compile_mode != "off" and spec.kind in SD_KINDS:
            sizes = dict.fromkeys(spec.size_for_aspect(aspect) for aspect in ASPECTS)
            self.plan_warm_up(name, list(sizes))

    def plan_warm_up(self, name: str, sizes: list[tuple[int, int]]) -> None:
        """Each size at batch 1 and 2, and where LoRAs take slots, also with one slot on (as a
        one-LoRA job runs), so that a member's first LoRA job compiles nothing either."""
        with_lora = (False, True) if self.hotswaps and self.registry.get(name).kind in lora.LORA_KINDS else (False,)
        self.warm_up += [(name, width, height, count, slot) for slot in with_lora for width, height in sizes
                         for count in (1, 2)]

    def warm_up_step(self) -> bool:
        """Run the next planned warm-up shape (one denoising step), so no member's job waits for its
        compilation; the worker calls this only while it has no job. Returns whether more remain."""
        if not self.warm_up:
            return False
        name, width, height, count, slot = self.warm_up.pop(0)
        spec = self.registry.get(name)
        try:
            with self.adapters.warming(self.pipeline(spec)) if slot else contextlib.nullcontext():
                self.run(GenerationRequest(job_id=0, model=name, prompt="warm-up", width=width, height=height,
                                           steps=1, guidance=spec.guidance, count=count))
        except Exception:  # a shape the model refuses is not worth a failed start
            log.exception("warm-up of %s at %dx%d x%d%s failed", name, width, height, count,
                          " with a LoRA slot on" if slot else "")
        return bool(self.warm_up)

    def run(self, request: GenerationRequest, on_step: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None) -> GenerationResult:
        """Generate ``request.count`` images; blocking, on the caller's (the device worker's) thread.

        ``on_step(step, total)`` is called after every denoising step; when ``is_cancelled()``
        turns true between steps the run stops and JobCancelled(job_id, step) is raised.
        Raises UnknownModel and RequestRefused for requests the model cannot serve, and OutOfMemory
        when the job does not fit even after the recovery steps (inference/recovery.py).
        """
        return self.generate(request, on_step, is_cancelled).finish()

    def generate(self, request: GenerationRequest, on_step: Callable[[int, int], None] | None = None,
                 is_cancelled: Callable[[], bool] | None = None) -> Finishing:
        """``run``'s device work only: the worker calls ``finish()`` on another thread, so the device
        starts its next job while this one's files are made (inference/finishing.py)."""
        spec = self.registry.get(request.model)
        names = self.models_of(spec, request)
        with self.cache.pinned(self.device, names):
            return recovery.recovering(self.cache, self.device, request, names,
                                       lambda: self._run_once(spec, request, on_step, is_cancelled))

    def models_of(self, spec: ModelSpec, request: GenerationRequest | None = None) -> list[str]:
        """The registry models a job on ``spec`` uses (a ControlNet's base, IF's stage III): pinned while
        it runs, and what the out-of-memory recovery runs with CPU offload (inference/recovery.py).

        A canvas edit (``request.task == "inpaint"``) on an entry that links a dedicated inpainting
        model (``inpaint = "NAME"``) runs that model alone: the entry's own weights are not used."""
        if request is not None and request.task == "inpaint" and spec.inpaint and spec.inpaint in self.registry:
            spec = inpaint.inpaint_spec(self, spec)
        names = [spec.name, *([spec.base] if spec.base else [])]
        stage_3 = spec.extra.get("stage_3")
        if isinstance(stage_3, str) and stage_3 in self.registry:
            names.append(stage_3)
        return names

    def _run_once(self, spec: ModelSpec, request: GenerationRequest, on_step: Callable[[int, int], None] | None,
                  is_cancelled: Callable[[], bool] | None) -> Finishing:
        runner = training_job.handle if request.task == "train" else RUNNERS[spec.kind]
        outcome = runner(self, spec, request, on_step, is_cancelled)
        return outcome if isinstance(outcome, Finishing) else Finishing.done(outcome)

    def one_call_for_count(self, pipe: DiffusionPipeline, job_loras: list[lora.JobLora]) -> bool:
        """Whether a job's ``count`` images run as one pipeline call (one generator per image)
        rather than one call each: where that gives each image as its seed alone gives it.

        On CPU that holds once the pipeline is batch-invariant, and not with a LoRA's own
        (unpatched) layers in the UNet; on CUDA the plain layers make it near-identical, as for
        batched jobs (inference/batching.py), and one call is what the device is for."""
        if not batching.applies_to(self.device):
            return True
        return batching.is_batch_invariant(pipe) and not job_loras

    def run_batch(self, requests: list[GenerationRequest], on_step: Callable[[int, int, int], None] | None = None,
                  is_cancelled: Callable[[int], bool] | None = None) -> list[GenerationResult | BaseException]:
        """``generate_batch`` with every job's files made at once (see there)."""
        return [outcome.finish() if isinstance(outcome, Finishing) else outcome
                for outcome in self.generate_batch(requests, on_step, is_cancelled)]

    def generate_batch(self, requests: list[GenerationRequest], on_step: Callable[[int, int, int], None] | None = None,
                       is_cancelled: Callable[[int], bool] | None = None) -> list[Finishing | BaseException]:
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
                ready.append((request, sd.check(spec, request)))
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
        with job_scheduler(self, spec, pipe, first.scheduler) as run_spec:
            # Each job's prompt is encoded alone (as in a lone run), then grouped by embedding shape.
            groups: dict[tuple[Any, ...], list[tuple[GenerationRequest, dict[str, Any], list[str]]]] = {}
            for request, _ in ready:
                encoded = prompts.encode(pipe, request.prompt, request.negative_prompt, guidance=guidance,
                                         device=self.device, clip_skip=spec.clip_skip)
                rows = batching.prompt_rows(pipe, encoded.kwargs, guidance=guidance, device=self.device)
                groups.setdefault(batching.shape_key(rows), []).append((request, rows, encoded.notes))
            for members in groups.values():
                self._batched_call(run_spec, pipe, guidance, members, outcome, on_step, is_cancelled)

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
            outcome[request.job_id] = Finishing(request.job_id, partial(image_result, spec, request, guidance, mine,
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
