"""Loads each pipeline once per (model, device) and keeps it resident.

Loading SDXL takes seconds to minutes while a denoising step takes milliseconds, so a worker must
never load per job. Loads are serialised per key (two jobs for a cold model wait for one load, and
a load of model A never waits for model B). The cache hands out the pipeline object itself: the
caller guarantees one thread per device, because a diffusers pipeline's scheduler holds per-call
state and breaks when two threads run it at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from diffusers import (
    DDIMScheduler,
    DiffusionPipeline,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    IFPipeline,
    PNDMScheduler,
    StableDiffusion3Pipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionUpscalePipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    StableVideoDiffusionPipeline,
    UNet2DConditionModel,
)

from inference import heap, hub, memory, single_file
from inference.models import ModelSpec
from inference.residency import Residency

log = logging.getLogger(__name__)

# Loading bars from diffusers and transformers would interleave with the bot's logs on every load.
diffusers.utils.logging.disable_progress_bar()
transformers.utils.logging.disable_progress_bar()

# Scheduler name (models.SCHEDULERS) -> diffusers class and config overrides. The overrides are
# applied on top of the model's own scheduler config, which carries its training noise schedule.
SCHEDULER_CLASSES: dict[str, tuple[type, dict[str, Any]]] = {
    "euler": (EulerDiscreteScheduler, {}),
    "euler-a": (EulerAncestralDiscreteScheduler, {}),
    "euler-trailing": (EulerDiscreteScheduler, {"timestep_spacing": "trailing"}),
    "euler-a-trailing": (EulerAncestralDiscreteScheduler, {"timestep_spacing": "trailing"}),
    "dpmpp-2m": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp-2m-karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "ddim": (DDIMScheduler, {}),
    "pndm": (PNDMScheduler, {"skip_prk_steps": True}),
}

PIPELINE_CLASSES: dict[str, type[DiffusionPipeline]] = {
    "sd15": StableDiffusionPipeline,
    "sdxl": StableDiffusionXLPipeline,
    "sdxl-lightning": StableDiffusionXLPipeline,
    "sdxl-turbo": StableDiffusionXLPipeline,
    "svd": StableVideoDiffusionPipeline,
    "sd2": StableDiffusionPipeline,
    "sd3": StableDiffusion3Pipeline,
    "sd-x4": StableDiffusionUpscalePipeline,
    # Dedicated inpainting checkpoints (9-channel UNets): canvas edits only (inference/runners/inpaint.py).
    "sd15-inpaint": StableDiffusionInpaintPipeline,
    "sdxl-inpaint": StableDiffusionXLInpaintPipeline,
    # Stage I only; stage II (and the x4 stage III) are loaded by inference/runners/deepfloyd.py.
    "deepfloyd-if": IFPipeline,
}
# Kinds whose repos may carry a bundled safety checker: image moderation is the moderation
# package's job, and the checker would cost ~1.2 GB and black out images without saying why.
_NO_SAFETY_CHECKER = ("sd15", "sd2", "deepfloyd-if", "sd15-inpaint")


class ModelLoadError(RuntimeError):
    """A model's weights could not be loaded; the message names the model and what to do."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"Cannot load model {name!r}: {message}")
        self.name = name


def dtype_for(spec: ModelSpec, device: str) -> torch.dtype:
    """float32 on CPU (half precision is slow or unsupported there); half precision on GPUs.

    SDXL-family VAEs overflow in float16 and diffusers then upcasts the VAE to float32 on every
    call, so they get bfloat16, which has float32's range. ``dtype = "float16"`` in the TOML
    overrides this.
    """
    override = spec.extra.get("dtype")
    if override:
        return getattr(torch, str(override))
    if torch.device(device).type == "cpu":
        return torch.float32
    return torch.bfloat16 if spec.kind.startswith("sdxl") else torch.float16


def make_scheduler(spec: ModelSpec, base_config: Any) -> Any:
    """A fresh scheduler: the model's own config (its training noise schedule) plus the named overrides.

    Always a new object, so two pipelines sharing weights never share scheduler state.
    """
    if spec.scheduler == "default":
        cls, overrides = getattr(diffusers, base_config["_class_name"]), {}
    else:
        cls, overrides = SCHEDULER_CLASSES[spec.scheduler]
    overrides = dict(overrides)
    if spec.timestep_spacing:
        overrides["timestep_spacing"] = spec.timestep_spacing
    return cls.from_config(base_config, **overrides)


class ModelCache(Residency):
    """Loads each pipeline once per (model, device); ``Residency`` keeps them within the memory budgets."""

    def get(self, spec: ModelSpec, device: str) -> DiffusionPipeline:
        """The pipeline for ``spec`` on ``device``, loading it (or moving it back from RAM) on first use."""
        key = (spec.name, device)
        pipe = self._pipelines.get(key)
        if pipe is not None and (self._where.get(key) == "device" or key in self._offloaded):
            self._used[key] = next(self._clock)
            return pipe
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            pipe = self._pipelines.get(key)
            if pipe is not None:
                if self._where.get(key) != "device" and key not in self._offloaded:
                    self._bring_back(key, device)
                self._used[key] = next(self._clock)
                return pipe
            # Room first, for what it is known to take (a model loaded before, or one checkpoint file):
            # the device must not hold the old models and the new one at once.
            with self._guard:
                shares = any(k[1] == device and source[0] == _weights(spec) for k, source in self._sources.items())
            if not shares:  # a model over resident weights (from_pipe) adds next to nothing
                self._fit(device, keep={key}, extra=self._sizes.get(spec.name) or _file_size(spec))
            started = time.perf_counter()
            try:
                pipe, scheduler_config = self._load(spec, device)
            except single_file.SingleFileError as exc:
                raise ModelLoadError(spec.name, str(exc)) from exc
            with self._guard:
                self._scheduler_configs[key] = scheduler_config
                self._pipelines[key] = pipe
                self._sources[key] = (_weights(spec), dtype_for(spec, device), _unet_file(spec))
                self._where[key] = "device"
                self._used[key] = next(self._clock)
            self._sizes[spec.name] = memory.distinct_bytes(memory.modules_of(pipe))
            log.info("loaded %s on %s in %.2f s (%s)", spec.name, device, time.perf_counter() - started,
                     memory.gb(self._sizes[spec.name]))
            self._fit(device, keep={key})
            heap.settle(f"loading {spec.name}")
            return pipe

    def scheduler_config(self, spec: ModelSpec, device: str) -> Any:
        """The scheduler config a loaded model's folder ships (its training noise schedule)."""
        self.get(spec, device)
        return self._scheduler_configs[(spec.name, device)]

    def companion(self, key: tuple[str, str], base: Any, build: Callable[[], Any]) -> Any:
        """A pipeline built over a resident one (ControlNet over SD, IF stage II beside stage I), kept
        while ``base`` stays resident and rebuilt when it was reloaded.

        ``build`` runs once per base under the key's lock; it should share ``base``'s modules
        (``from_pipe``) so the companion costs only what it adds (a ControlNet, a second stage).
        """
        cached = self._companions.get(key)
        if cached is not None and cached[0] is base:
            return cached[1]
        with self._guard:
            lock = self._locks.setdefault((f"companion:{key[0]}", key[1]), threading.Lock())
        with lock:
            cached = self._companions.get(key)
            if cached is None or cached[0] is not base:
                started = time.perf_counter()
                cached = (base, build())
                with self._guard:
                    self._companions[key] = cached
                log.info("built %s on %s in %.2f s", key[0], key[1], time.perf_counter() - started)
                heap.settle(f"building {key[0]}")
            return cached[1]

    def load_part(self, cls: Any, name: str, source: str, device: str, dtype: torch.dtype, **kwargs: Any) -> Any:
        """One model or pipeline folder (a ControlNet, a second stage) onto ``device``; load failures
        become a ModelLoadError that names the model and what to do."""
        source, variant = hub.pipeline_folder(name, source, device=device, variant=kwargs.pop("variant", None),
                                              skip_weights=[k for k, v in kwargs.items() if v is None])
        if variant:
            kwargs["variant"] = variant
        try:
            part = cls.from_pretrained(source, dtype=dtype, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(name, _explain(source, exc)) from exc
        part = part.to(device)
        if hasattr(part, "set_progress_bar_config"):
            part.set_progress_bar_config(disable=True)
        return part

    def _load(self, spec: ModelSpec, device: str) -> tuple[DiffusionPipeline, Any]:
        if spec.kind not in PIPELINE_CLASSES:
            raise ModelLoadError(spec.name, f"a {spec.kind} model is not a pipeline of its own; its runner builds it")
        cls = PIPELINE_CLASSES[spec.kind]
        dtype = dtype_for(spec, device)
        components: dict[str, Any] = {}
        if spec.kind in _NO_SAFETY_CHECKER:
            components.update(safety_checker=None, requires_safety_checker=False)
        if spec.kind == "deepfloyd-if":
            components.update(watermarker=None, feature_extractor=None)
        if spec.extra.get("unet_file"):
            components["unet"] = self._load_unet(spec, device, dtype)
        if spec.extra.get("vae"):
            components["vae"] = single_file.load_vae(spec, dtype)

        shared = self._shared_base(spec, device, dtype)
        if shared is not None:
            base, scheduler_config = shared
            # Same weights already resident (e.g. SDXL and SDXL-Lightning share text encoders and
            # VAE): reuse them, but give this pipeline its own scheduler object.
            # from_pipe casts every (shared!) module to its dtype argument, float32 by default, so
            # the dtype must be passed or a GPU base pipeline would be silently upcast.
            with _quiet_diffusers():
                pipe = cls.from_pipe(
                    base, scheduler=make_scheduler(spec, scheduler_config), dtype=dtype, **components
                )
        else:
            if spec.single_file:
                pipe = single_file.load_pipeline(cls, spec, dtype, components).to(device)
            else:
                pipe = self._from_pretrained(cls, spec, device, dtype, components)
            scheduler_config = pipe.scheduler.config
            pipe.scheduler = make_scheduler(spec, scheduler_config)
        pipe.set_progress_bar_config(disable=True)
        return pipe, scheduler_config

    def _shared_base(
        self, spec: ModelSpec, device: str, dtype: torch.dtype
    ) -> tuple[DiffusionPipeline, Any] | None:
        """A resident pipeline with the same base weights on the same device, if any.

        One whose UNet was swapped (Lightning) can only lend its text encoders and VAE to a model
        that brings its own UNet too; the SDXL base must not inherit a distilled UNet.
        """
        found = None
        with self._guard:
            for key, (source, source_dtype, unet_file) in self._sources.items():
                if key[1] != device or (source, source_dtype) != (_weights(spec), dtype) or key in self._offloaded:
                    continue
                if unet_file is None or _unet_file(spec) is not None:
                    found = key
                    break
        if found is None:
            return None
        if self._where.get(found) != "device":  # parked in RAM: its modules come back for both
            self._bring_back(found, device)
        return self._pipelines[found], self._scheduler_configs[found]

    def _from_pretrained(
        self,
        cls: type[DiffusionPipeline],
        spec: ModelSpec,
        device: str,
        dtype: torch.dtype,
        components: dict[str, Any],
    ) -> DiffusionPipeline:
        kwargs: dict[str, Any] = {"dtype": dtype, **components}
        source, variant = hub.pipeline_folder(spec.name, spec.source, device=device, variant=spec.extra.get("variant"),
                                              skip_weights=[*hub.skipped_weights(spec), *components])
        if variant:
            kwargs["variant"] = variant
        target = torch.device(device)
        if target.type == "cuda":
            # Loading straight onto the GPU skips a copy through host memory (.to() after a CPU load). diffusers
            # only accepts the bare "cuda" device map, which means the current CUDA device.
            kwargs["device_map"] = "cuda"
        try:
            if target.type == "cuda":
                with torch.cuda.device(target):
                    pipe = cls.from_pretrained(source, **kwargs)
            else:
                pipe = cls.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(spec.name, _explain(source, exc)) from exc
        # The denoiser: a UNet for most kinds, an MMDiT transformer for SD 3.
        denoiser = pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer
        if denoiser.device != target and not (target.index is None and denoiser.device.type == target.type):
            if getattr(pipe, "hf_device_map", None) is not None:
                pipe.reset_device_map()
            pipe.to(target)
        return pipe

    def _load_unet(self, spec: ModelSpec, device: str, dtype: torch.dtype) -> UNet2DConditionModel:
        """Build the base UNet architecture and fill it from a single distilled file (Lightning).

        The architecture comes from the base repo's config, so the base UNet weights (~5 GB for
        SDXL) are never read just to be thrown away.
        """
        import safetensors.torch
        from accelerate import init_empty_weights

        repo, filename = str(spec.extra["unet_repo"]), str(spec.extra["unet_file"])
        try:
            base, _ = hub.pipeline_folder(spec.name, spec.source, device=device, variant=spec.extra.get("variant"),
                                          skip_weights=hub.skipped_weights(spec))
            config = UNet2DConditionModel.load_config(base, subfolder="unet")
            weights = Path(repo) / filename if Path(repo).is_dir() else hub.fetch_file(spec.name, repo, filename)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(spec.name, _explain(f"{repo}/{filename}", exc)) from exc
        with init_empty_weights():
            unet = UNet2DConditionModel.from_config(config)
        state = safetensors.torch.load_file(str(weights), device=str(torch.device(device)))
        unet.load_state_dict(state, assign=True, strict=True)
        if unet.dtype != dtype:
            with _quiet_diffusers():
                unet = unet.to(dtype=dtype)
        return unet.eval()


def _file_size(spec: ModelSpec) -> int:
    return Path(spec.source).stat().st_size if spec.single_file and Path(spec.source).is_file() else 0


def _weights(spec: ModelSpec) -> str:
    """What a model's resident modules are made of: its source, and its own VAE when it names one."""
    return f"{spec.source} + vae {spec.extra['vae']}" if spec.extra.get("vae") else spec.source


def _unet_file(spec: ModelSpec) -> str | None:
    if not spec.extra.get("unet_file"):
        return None
    return f"{spec.extra.get('unet_repo')}/{spec.extra['unet_file']}"


@contextlib.contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """Silence diffusers' "modules that should be kept in float32: []" warning on dtype casts."""
    logger = logging.getLogger("diffusers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _explain(source: str, exc: Exception) -> str:
    """One line that tells an operator what to do, not a stack of hub internals."""
    if Path(source).is_absolute() or source.startswith("."):
        return f"{source}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    return f"{source!r} is neither a folder nor a hub id; point source at a diffusers folder or an org/name hub id"
