"""Requests, results and events that cross the boundary between the job service and the GPU side.

Plain dataclasses with no torch import, so the bot can build and read them without paying for
``import torch``; everything here must also survive a JSON round trip (for remote workers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from inference.limits import DEFAULT_HIRES_STRENGTH, DEFAULT_MASK_BLUR, SEED_LIMIT

# txt2img: from noise; img2img: from ``init_image`` at ``strength``; upscale: ``init_image`` through
# an upscaler model by ``scale``.
# img2vid: ``init_image`` animated into ``frames`` frames at ``fps`` with ``motion`` (Stable Video Diffusion).
# pose: text to image guided by ``control_image`` (an OpenPose skeleton) at ``control_scale``.
# inpaint: ``init_image`` redrawn where ``mask_image`` is white (Zoom Out, Pan, Vary (Region), /edit);
# the pixels outside the mask are pasted back from ``init_image`` after decoding.
# train: a LoRA trained on ``train_images`` over ``model`` (inference/training/job.py).
# describe: ``init_image`` -> four prompts (a captioning model's ``caption`` kind; inference/runners/caption.py).
TaskKind = Literal["txt2img", "img2img", "upscale", "img2vid", "pose", "inpaint", "describe", "train"]


@dataclass(slots=True)
class GenerationRequest:
    """One job as a runner sees it: everything needed to reproduce the output bit for bit."""

    job_id: int
    model: str
    prompt: str
    negative_prompt: str = ""
    width: int = 512
    height: int = 512
    steps: int = 20
    guidance: float = 7.0
    seed: int = 0
    count: int = 1
    task: TaskKind = "txt2img"
    scheduler: str | None = None
    # The input image of img2img and upscale jobs: base64 of a lossless WebP or PNG (JSON-safe, so
    # a queued job survives a restart with its input). None for txt2img.
    init_image: str | None = None
    # img2img: how far from the input the result may go (0.05 keeps it, 1.0 ignores it).
    strength: float = 0.75
    # upscale: the factor (2 or 4).
    scale: int = 4
    # img2vid: frame count (0 = the model's), playback rate, motion bucket (1-255, SVD's conditioning).
    frames: int = 0
    fps: int = 7
    motion: int = 127
    # pose: the control image (base64 PNG/WebP, like init_image) and the ControlNet conditioning scale.
    control_image: str | None = None
    control_scale: float = 1.0
    # inpaint: the mask (base64 PNG, mode L, the size of ``init_image``; white = redraw) and the blur
    # in pixels of its edge when the source is pasted back (a soft seam).
    mask_image: str | None = None
    mask_blur: int = DEFAULT_MASK_BLUR
    # Hires fix (A1111's two passes): 0 = off, else the factor (1.5 or 2) the first image is
    # upscaled by before an image-to-image pass at ``hires_strength``; ``hires_upscaler`` is
    # "latent" or an upscaler model's name ("" = the default upscaler).
    hires: float = 0.0
    hires_strength: float = DEFAULT_HIRES_STRENGTH
    hires_upscaler: str = ""
    # Seamless tiles: circular padding in the UNet's and VAE's convolutions.
    tile: bool = False
    # IP-Adapter image prompts (inference/ipadapter.py): reference images (base64, like init_image),
    # one weight each, and the mode: "blend" (/blend: every image mixed by weight, all layers at
    # BLEND_SCALE) or "style" (/imagine style_ref: the style layers only, at ``ip_scale``).
    ip_images: list[str] = field(default_factory=list)
    ip_weights: list[float] = field(default_factory=list)
    ip_mode: str = ""
    ip_scale: float = 1.0
    # LoRAs to apply for this job only: [name, weight] pairs, names as listed in ATELIER_LORA_DIR.
    loras: list[tuple[str, float]] = field(default_factory=list)
    # Textual-inversion embeddings the prompts use, by name in ATELIER_EMBEDDINGS_DIR (for this job only).
    embeddings: list[str] = field(default_factory=list)
    # train: the training set, base64 of a zip of the images (stored apart, like init_image).
    train_images: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        return cls(**data)

    def batch_key(self) -> tuple[Any, ...] | None:
        """Jobs with equal keys can share one pipeline call (see inference/batching.py); None: never.

        Text to image only, without LoRAs, embeddings or image prompts (their weights live in the shared
        modules)."""
        if (self.task != "txt2img" or self.loras or self.embeddings or self.init_image or self.control_image
                or self.hires or self.tile or self.ip_images):
            return None
        if self.scheduler == "dpmpp-sde-karras":  # one Brownian tree per call: its noise would depend on the batch
            return None
        return (self.model, self.width, self.height, self.steps, self.scheduler or "", float(self.guidance))

    def seeds(self) -> list[int]:
        """Image i of a job uses seed + i, so any single image can be reproduced alone."""
        return [(self.seed + i) % SEED_LIMIT for i in range(self.count)]


@dataclass(slots=True)
class GeneratedImage:
    """One finished file: PNG bytes with the A1111 ``parameters`` chunk already written, or, for
    video jobs, the MP4 (GIF where ffmpeg is missing) named by ``mime``."""

    png: bytes
    seed: int
    width: int
    height: int
    mime: str = "image/png"


@dataclass(slots=True)
class GenerationResult:
    job_id: int
    images: list[GeneratedImage]
    # A 2x2 (or 1x2) grid PNG when count > 1, else None.
    grid_png: bytes | None
    # Seconds spent inside the pipeline call(s), for ETAs and stats.
    run_seconds: float
    # The A1111 parameters text of the first image (embedded in every PNG too).
    parameters: str = ""
    # Things the member should be told about the result (e.g. part of a long prompt was dropped).
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Progress:
    job_id: int
    step: int
    total: int
    # Set while the job's model is being downloaded for its first use (steps are 0 meanwhile): the
    # model's name and the bytes received / in all.
    loading: str | None = None
    done_bytes: int = 0
    total_bytes: int = 0


class JobCancelled(Exception):
    """Raised by a runner when the job was cancelled between two denoising steps."""

    def __init__(self, job_id: int, step: int) -> None:
        super().__init__(f"job {job_id} cancelled at step {step}")
        self.job_id = job_id
        self.step = step


class JobTimedOut(Exception):
    """The pipeline run of a job did not return within its watchdog limit (see inference.worker)."""

    def __init__(self, job_id: int, seconds: float) -> None:
        super().__init__(f"job {job_id} ran for more than {seconds:g} s and was abandoned")
        self.job_id = job_id
        self.seconds = seconds


# How long one pipeline run may take before the worker gives up on it, by task (the model's kind):
# far beyond a healthy run on a slow GPU, short enough that a hung run frees its member (and the
# device) within minutes rather than at the next restart. ATELIER_JOB_TIMEOUT overrides them all.
RUN_LIMITS: dict[str, float] = {"txt2img": 600.0, "img2img": 600.0, "pose": 600.0, "upscale": 900.0,
                                "img2vid": 1800.0, "inpaint": 600.0, "describe": 300.0,
                                "train": 7200.0}


def run_limit(requests: list[GenerationRequest], override: float | None = None) -> float:
    """Seconds the pipeline call for ``requests`` (one job, or a batch) may take."""
    if override:
        return override
    return max(RUN_LIMITS.get(r.task, 600.0) for r in requests)
class OutOfMemory(RuntimeError):
    """The job does not fit in its device's memory, even after moving every other model off the device
    and retrying with model CPU offload; the message names the model and the size asked for."""
