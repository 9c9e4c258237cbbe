"""The model registry: which models exist, where their weights live, and what a request may ask of them.

This module must stay free of torch and diffusers: the bot imports it to validate options and to
autocomplete model names, and must not pay for ``import torch`` (seconds, hundreds of MB) to do so.
The registry is read from TOML files by inference/registry_file.py; the packaged default in
``inference/data/models.toml`` names real Hugging Face ids with their documented settings.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference.limits import MAX_CANVAS_SIDE, MAX_GUIDANCE, SIZE_GRID

log = logging.getLogger(__name__)

ASPECTS = ("1:1", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16")

# /describe's captioner (BLIP through transformers) and Danbooru tagger (WD14, ONNX), and the
# IP-Adapters of /blend and style_ref: models that serve jobs, but draw nothing from a prompt.
HELPER_KINDS = ("caption", "tagger", "ip-adapter")
# Pipeline families the engine can run today. Anything else in a TOML file is a typo or a model the
# engine cannot serve yet, and is refused at load time rather than at the first job.
KINDS = ("sd15", "sdxl", "sdxl-lightning", "sdxl-turbo", "esrgan", "svd", "controlnet", "sd-x4", "sd2", "sd3",
         "deepfloyd-if", "sd15-inpaint", "sdxl-inpaint", *HELPER_KINDS)
# The Stable Diffusion 1.5 and SDXL families: one runner (inference/runners/sd.py), per-job LoRAs,
# batching across jobs and compilation.
SD_KINDS = ("sd15", "sdxl", "sdxl-lightning", "sdxl-turbo")
# Dedicated inpainting checkpoints (a UNet with 9 input channels: latents, mask, masked image) of the
# SD 1.5 and SDXL families. They only redraw a masked part of an image: a base entry names one with
# ``inpaint = "NAME"`` and its canvas edits run there; they are never offered for text to image.
INPAINT_KINDS = ("sd15-inpaint", "sdxl-inpaint")
# The family each inpainting kind belongs to (its LoRAs, its working sizes).
INPAINT_FAMILY = {"sd15-inpaint": "sd15", "sdxl-inpaint": "sdxl"}
# Kinds that draw from a prompt (the rest, e.g. upscalers, only transform images).
TEXT_TO_IMAGE_KINDS = ("sd15", "sdxl", "sdxl-lightning", "sdxl-turbo", "sd2", "sd3", "deepfloyd-if")
# Kinds a ``controlnet`` entry's ``base`` may name: UNet pipelines diffusers has ControlNet variants of.
CONTROLNET_BASE_KINDS = ("sd15", "sd2", "sdxl", "sdxl-lightning", "sdxl-turbo")
# Diffusion upscalers (x4, prompt-guided) that /upscale offers beside the Real-ESRGAN kind.
UPSCALER_KINDS = ("esrgan", "sd-x4")
# Kinds whose entries may name a separate VAE (``vae``): an AutoencoderKL replaces the pipeline's own.
VAE_KINDS = ("sd15", "sd2", "sdxl", "sdxl-lightning", "sdxl-turbo", *INPAINT_KINDS)

# Scheduler name -> (sampler name as AUTOMATIC1111 writes it, schedule type or None). A1111 readers
# (Civitai, the PNG Info tab) recognise these spellings: since A1111 1.9 a Karras sampler is written
# as the sampler and "Schedule type: Karras". The diffusers side of the mapping lives in
# ``inference/cache.py`` so that this module needs no torch.
SAMPLER_NAMES: dict[str, tuple[str, str | None]] = {
    "default": ("Default", None),
    "euler": ("Euler", None),
    "euler-a": ("Euler a", None),
    "euler-trailing": ("Euler", "SGM Uniform"),
    "euler-a-trailing": ("Euler a", "SGM Uniform"),
    "dpmpp-2m": ("DPM++ 2M", None),
    "dpmpp-2m-karras": ("DPM++ 2M", "Karras"),
    "dpmpp-sde-karras": ("DPM++ SDE", "Karras"),
    "dpmpp-2m-sde": ("DPM++ 2M SDE", None),
    "ddim": ("DDIM", None),
    "unipc": ("UniPC", None),
    "lms": ("LMS", None),
    "heun": ("Heun", None),
    "lcm": ("LCM", None),
    "pndm": ("PLMS", None),
}
SCHEDULERS = tuple(SAMPLER_NAMES)
# The sampler names of A1111's menu (what /imagine `sampler:` offers and models.toml accepts) ->
# scheduler name.
A1111_SAMPLERS: dict[str, str] = {
    "Euler a": "euler-a",
    "Euler": "euler",
    "DPM++ 2M": "dpmpp-2m",
    "DPM++ 2M Karras": "dpmpp-2m-karras",
    "DPM++ SDE Karras": "dpmpp-sde-karras",
    "DPM++ 2M SDE": "dpmpp-2m-sde",
    "DDIM": "ddim",
    "UniPC": "unipc",
    "LMS": "lms",
    "Heun": "heun",
    "LCM": "lcm",
    "PLMS": "pndm",
}
# What the few-step distilled kinds (Lightning, Turbo) may sample with: first-order samplers on
# trailing timesteps, which is how they were distilled; multistep, Karras and SDE samplers spend
# their few steps badly and burn the image.
FEW_STEP_SCHEDULERS = ("default", "euler-trailing", "euler-a-trailing", "lcm")


def scheduler_key(name: str) -> str | None:
    """The scheduler name for a scheduler name or an A1111 sampler name (any case); None if neither."""
    text = name.strip()
    if text in SAMPLER_NAMES:
        return text
    folded = {key.lower(): value for key, value in A1111_SAMPLERS.items()}
    return folded.get(text.lower()) or (text.lower() if text.lower() in SAMPLER_NAMES else None)



class RegistryError(ValueError):
    """The models TOML cannot be used; the message is one line naming the file and the key."""


class UnknownModel(ValueError):
    """A request named a model the registry does not have."""

    def __init__(self, name: str, valid: list[str]) -> None:
        super().__init__(f"Unknown model {name!r}; valid models: {', '.join(valid)}")
        self.name = name
        self.valid = valid


class UnknownAspect(ValueError):
    """A request asked for an aspect ratio outside ``ASPECTS``."""

    def __init__(self, aspect: str) -> None:
        super().__init__(f"Unknown aspect {aspect!r}; valid aspects: {', '.join(ASPECTS)}")
        self.aspect = aspect
        self.valid = list(ASPECTS)


class RequestRefused(ValueError):
    """The model cannot serve the request as asked (an option out of its range, a missing input image);
    the message is shown to the member as is. Not bot.errors.InvalidOption, which the bot raises
    before a job exists."""


@dataclass(frozen=True)
class ModelSpec:
    """One servable model: where it comes from, its defaults and the limits users must stay within."""

    name: str
    kind: str
    # A Hugging Face hub id, an absolute path to a diffusers folder, or one .safetensors checkpoint
    # (relative paths in the TOML are resolved against the TOML's folder when the registry is loaded).
    source: str
    steps: int
    guidance: float
    scheduler: str
    width: int
    height: int
    max_steps: int
    max_count: int
    description: str = ""
    # Overrides the scheduler's timestep spacing ("leading", "trailing", "linspace") when set.
    timestep_spacing: str | None = None
    # Kind-specific settings, e.g. the SDXL-Lightning UNet file; see the packaged models.toml.
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def sampler(self) -> str:
        """The AUTOMATIC1111 sampler name, for the ``parameters`` text and the bot's embeds."""
        return SAMPLER_NAMES.get(self.scheduler, (self.scheduler, None))[0]

    @property
    def schedule_type(self) -> str | None:
        """The A1111 "Schedule type" (e.g. SGM Uniform for trailing spacing), or None."""
        if self.timestep_spacing == "trailing":
            return "SGM Uniform"
        return SAMPLER_NAMES.get(self.scheduler, (self.scheduler, None))[1]

    @property
    def base(self) -> str | None:
        """The registry model a ``controlnet`` entry draws with (it shares that pipeline's weights)."""
        base = self.extra.get("base")
        return str(base) if base else None

    @property
    def inpaint(self) -> str | None:
        """The registry's dedicated inpainting model this entry's canvas edits run on, or None (the
        entry's own weights then inpaint, through the inpaint pipeline over its resident one)."""
        name = self.extra.get("inpaint")
        return str(name) if name else None

    @property
    def single_file(self) -> bool:
        """The weights are one original-layout .safetensors checkpoint (A1111/Civitai), not a diffusers folder."""
        return "family" in self.extra

    @property
    def clip_skip(self) -> int:
        """A1111's "Clip skip": 1 uses CLIP's last layer, 2 the one before it."""
        return int(self.extra.get("clip_skip", 1))

    @property
    def few_step(self) -> bool:
        """Distilled models (Lightning, Turbo) are trained without classifier-free guidance."""
        return self.kind in ("sdxl-lightning", "sdxl-turbo")

    def size_for_aspect(self, aspect: str) -> tuple[int, int]:
        """Width and height for an aspect ratio at this model's native pixel budget.

        Models are trained at roughly one pixel count (SD 1.5 ~512², SDXL ~1024²), so every aspect
        keeps ``width * height`` close to the native budget: w = sqrt(budget * a / b) and
        h = sqrt(budget * b / a), each rounded to the nearest multiple of 64 (the latent grid the
        UNets were trained on). SDXL 16:9 -> 1344x768, SD 1.5 3:2 -> 640x448.
        """
        if aspect not in ASPECTS:
            raise UnknownAspect(aspect)
        a, b = (int(part) for part in aspect.split(":"))
        budget = self.width * self.height
        width = math.sqrt(budget * a / b)
        height = math.sqrt(budget * b / a)
        return _round_to_grid(width), _round_to_grid(height)

    def size_for_canvas(self, width: int, height: int) -> tuple[int, int]:
        """The working size for a canvas of ``width`` x ``height`` (any aspect): the canvas's aspect at
        this model's native pixel budget, each side a multiple of the latent grid (SIZE_GRID).

        Canvas edits (inpainting) run the model at this size and the runner resizes the result back
        to the canvas, so a 1536x512 pan strip costs what a native image costs. The rounding keeps
        ``width * height`` within one grid step of the budget; very thin canvases keep one grid cell,
        and no side exceeds MAX_CANVAS_SIDE.
        """
        if width < 1 or height < 1:
            raise ValueError(f"a canvas needs a positive size, not {width}x{height}")
        budget = self.width * self.height
        sides = (math.sqrt(budget * width / height), math.sqrt(budget * height / width))
        w, h = (min(_round_to_grid(side), MAX_CANVAS_SIDE // SIZE_GRID * SIZE_GRID) for side in sides)
        return w, h


def _round_to_grid(value: float) -> int:
    return max(SIZE_GRID, math.floor(value / SIZE_GRID + 0.5) * SIZE_GRID)


def detector_problem(spec: ModelSpec) -> str | None:
    """Why ``spec`` cannot turn photos into poses, in words an operator can act on; None when it can.

    Pose detection is optional: controlnet_aux (and its OpenPose annotator weights, ~200 MB) is not a
    dependency, so this checks without importing anything (``find_spec``), for the bot to answer at once.
    """
    import importlib.util

    if importlib.util.find_spec("controlnet_aux") is None:
        return ("Pose detection from photos is not enabled on this bot: its admin can `pip install controlnet-aux` "
                "and set `detector` on the pose model in models.toml to a folder holding `body_pose_model.pth` "
                "(from lllyasviel/Annotators). Meanwhile, pick a `pose` preset or attach an OpenPose skeleton.")
    folder = spec.extra.get("detector")
    if not folder:
        return (f"Pose detection from photos is not configured for {spec.name}: its admin can set `detector` in "
                "models.toml to a folder holding `body_pose_model.pth` (from lllyasviel/Annotators). Meanwhile, "
                "pick a `pose` preset or attach an OpenPose skeleton.")
    if not (Path(str(folder)) / "body_pose_model.pth").is_file():
        return (f"Pose detection for {spec.name} is misconfigured: {folder} has no `body_pose_model.pth`. "
                "Meanwhile, pick a `pose` preset or attach an OpenPose skeleton.")
    return None


def validate_request_options(
    spec: ModelSpec,
    steps: int | None = None,
    count: int | None = None,
    guidance: float | None = None,
) -> None:
    """Refuse options the model cannot honour with a message fit for the user.

    ``None`` means "use the model default" and is always accepted. Checking here (not in the
    runner) lets the bot answer at once instead of failing a queued job minutes later.
    """
    if steps is not None and not 1 <= steps <= spec.max_steps:
        raise RequestRefused(f"Steps must be 1-{spec.max_steps} for {spec.name}; you asked for {steps}")
    if count is not None and not 1 <= count <= spec.max_count:
        raise RequestRefused(f"Count must be 1-{spec.max_count} for {spec.name}; you asked for {count}")
    if guidance is not None and not (math.isfinite(guidance) and 0.0 <= guidance <= MAX_GUIDANCE):
        raise RequestRefused(
            f"Guidance must be 0-{MAX_GUIDANCE:g} for {spec.name}; you asked for {guidance:g}"
        )


def fit_scheduler(spec: ModelSpec, name: str, *, lcm_lora: bool = False) -> str:
    """The scheduler name for sampler ``name`` on ``spec``, or RequestRefused saying why it does not fit.

    SD 3 and DeepFloyd IF sample with their own schedulers only. The few-step distilled kinds take
    first-order samplers on trailing timesteps (Euler picks its trailing variant) or LCM. LCM needs
    a model distilled for it: an LCM model (registry ``lcm = true`` or scheduler "lcm"), a few-step
    model, or an LCM LoRA in the job (``lcm_lora``)."""
    key = scheduler_key(name)
    if key is None:
        raise RequestRefused(f"Unknown sampler {name!r}; choose one of {', '.join(A1111_SAMPLERS)}")
    label = next((menu for menu, value in A1111_SAMPLERS.items() if value == key), name)
    if spec.kind in ("sd3", "deepfloyd-if"):
        if key != "default":
            raise RequestRefused(f"{spec.name} samples with its own scheduler only; {label} does not apply to it. "
                                 "Leave the sampler empty")
        return key
    if spec.few_step:
        key = {"euler": "euler-trailing", "euler-a": "euler-a-trailing"}.get(key, key)
        if key not in FEW_STEP_SCHEDULERS:
            raise RequestRefused(f"{spec.name} is a few-step distilled model: it samples with Euler, Euler a or LCM; "
                                 f"{label} would spend its few steps badly")
    if key == "lcm" and not (spec.few_step or lcm_lora or spec.scheduler == "lcm" or spec.extra.get("lcm")):
        raise RequestRefused(f"LCM only works with models distilled for it, and {spec.name} is not one: choose an "
                             "LCM model, or add an LCM LoRA (such as lcm-lora-sdv1-5) to the job")
    return key


class ModelRegistry:
    """The models a deployment serves, keyed by name, with one of them the default."""

    def __init__(self, specs: list[ModelSpec], default: str, path: Path | None = None) -> None:
        if not specs:
            raise RegistryError(f"{path or '<registry>'}: no models defined")
        self._specs = {spec.name: spec for spec in specs}
        if default not in self._specs:
            raise RegistryError(
                f"{path or '<registry>'}: default = {default!r} is not one of the models "
                f"({', '.join(self._specs)})"
            )
        self._default = default
        self.path = path

    @classmethod
    def load(cls, path: str | Path | None = None, *, models_dir: str | Path | None = None) -> ModelRegistry:
        """The packaged registry, extended by the TOML at ``path`` and the checkpoints in ``models_dir``.

        A table in the user's file adds a model, or replaces the packaged one of the same name (a
        table without ``kind`` and ``source`` only changes the fields it sets), or removes it
        (``disabled = true``). ``packaged = false`` at the top of the user's file serves that file's
        models alone. Each ``.safetensors`` checkpoint in ``models_dir`` becomes a model named after
        its file, unless a table already has that name.
        """
        # Imported here: the file reader builds this module's ModelSpecs.
        from inference.registry_file import read_specs

        specs, default, toml_path = read_specs(path, models_dir)
        registry = cls(specs, default, path=toml_path)
        log.info("loaded %d models from %s%s (default %s)", len(specs), toml_path,
                 f" and {models_dir}" if models_dir is not None else "", default)
        return registry

    def names(self) -> list[str]:
        return list(self._specs)

    def specs(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def get(self, name: str) -> ModelSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownModel(name, self.names()) from None

    @property
    def default(self) -> ModelSpec:
        return self._specs[self._default]

    @property
    def default_name(self) -> str:
        return self._default

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)
