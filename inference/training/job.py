"""A training job on a device worker: the engine's runner for requests with ``task="train"``.

The request names the base model (``model``), the step count (``steps``), the seed, the training set
(``train_images``: base64 of a zip, stored apart from the job's parameters like every job input) and
``extra["training"]``: kind, trigger, rank, learning rate, the LoRA's display name and ``output``,
the file's path inside the engine's training folder (``<train_dir>/loras/<output>``), chosen by the
bot. Checkpoints go to ``<train_dir>/work/job-<id>``, so the same job claimed again after a restart
resumes. Only engines given a training folder train (ATELIER_TRAIN_DEVICES); before training, every
model resident on the device is evicted (the next generation reloads them under the budget).
The result is the last sample image as the job's PNG; the LoRA is the file at ``output``.
"""

from __future__ import annotations

import base64
import io
import logging
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from inference.limits import MAX_TRAIN_IMAGES, TRAIN_LR_RANGE, TRAIN_RANK_RANGE, TRAIN_STEPS_RANGE
from inference.media import a1111_parameters, encode_png
from inference.models import ModelSpec, RequestRefused
from inference.training.settings import DEFAULTS, TrainingSettings, check_trigger
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

# The latest sample image of a running job, in its work folder.
SAMPLE = "sample.png"
# Base model kinds a LoRA trains on (the distilled few-step SDXLs are not trained on directly).
FAMILY_OF_KIND = {"sd15": "sd1", "sdxl": "sdxl"}


def pack_images(images: list[bytes]) -> str:
    """The training set as a request carries it: base64 of an uncompressed zip (JSON-safe)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for index, data in enumerate(images):
            archive.writestr(f"{index:02d}.img", data)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def unpack_images(text: str) -> list[bytes]:
    with zipfile.ZipFile(io.BytesIO(base64.b64decode(text))) as archive:
        names = sorted(archive.namelist())[:MAX_TRAIN_IMAGES]
        return [archive.read(name) for name in names]


def output_path(train_dir: Path, output: str) -> Path:
    """``<train_dir>/loras/<output>``; anything that would leave that folder is refused."""
    relative = PurePosixPath(output)
    if relative.is_absolute() or ".." in relative.parts or relative.suffix != ".safetensors" or not relative.parts:
        raise RequestRefused(f"invalid LoRA output path {output!r}")
    return train_dir / "loras" / Path(*relative.parts)


def work_dir(train_dir: Path, job_id: int) -> Path:
    return train_dir / "work" / f"job-{job_id}"


def settings_of(spec: ModelSpec, request: GenerationRequest) -> TrainingSettings:
    """The run's settings from the request, checked again here (a job may come from another process)."""
    family = FAMILY_OF_KIND.get(spec.kind)
    if family is None or spec.single_file:
        raise RequestRefused(f"{spec.name} cannot be trained on: LoRA training takes SD 1.5 and SDXL base models "
                             "in diffusers layout.")
    options: dict[str, Any] = dict(request.extra.get("training") or {})
    kind = str(options.get("kind", "subject"))
    if (kind, family) not in DEFAULTS:
        raise RequestRefused(f"unknown training kind {kind!r}")
    defaults = DEFAULTS[(kind, family)]
    rank = int(options.get("rank", defaults.rank))
    learning_rate = float(options.get("learning_rate", defaults.learning_rate))
    if not (1 <= request.steps <= TRAIN_STEPS_RANGE[1] and 1 <= rank <= TRAIN_RANK_RANGE[1]
            and 0 < learning_rate <= TRAIN_LR_RANGE[1]):
        raise RequestRefused("training settings out of range")
    resolution = int(options.get("resolution", defaults.resolution))
    every = max(1, request.steps // 4)
    return TrainingSettings(kind=kind, family=family, trigger=check_trigger(str(options.get("trigger", ""))),
                            base_model=spec.name, rank=rank, steps=request.steps, learning_rate=learning_rate,
                            resolution=resolution, seed=request.seed,
                            checkpoint_every=int(options.get("checkpoint_every", min(100, request.steps))),
                            sample_every=int(options.get("sample_every", every)),
                            sample_steps=int(options.get("sample_steps", 20)))


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: Callable[[int, int], None] | None,
           is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    from inference.training.trainer import TrainingCancelled, train_lora

    if engine.train_dir is None:
        raise RequestRefused("This device does not train LoRAs (ATELIER_TRAIN_DEVICES).")
    settings = settings_of(spec, request)
    if not request.train_images:
        raise RequestRefused("a training job needs its images")
    images = unpack_images(request.train_images)
    options = request.extra["training"]
    output = output_path(engine.train_dir, str(options.get("output", "")))
    work = work_dir(engine.train_dir, request.job_id)
    for name in sorted(engine.cache.on_device(engine.device)):  # the trainer needs the device's memory
        engine.cache.evict(name, engine.device)
    samples: list[Any] = []
    done = [0]

    def keep_sample(step: int, image: Any) -> None:
        """The latest sample, also as ``<work>/sample.png`` (written whole, then moved in), which the
        bot shows in the member's progress message."""
        samples.append(image)
        partial = work / ".sample.png.partial"
        partial.write_bytes(encode_png(image, f"{settings.trigger}\nSteps: {step}"))
        partial.replace(work / SAMPLE)

    def progress(step: int, steps: int, loss: float) -> None:
        done[0] = step
        if on_step is not None:
            on_step(step, steps)

    try:
        result = train_lora(settings, images, source=spec.source, device=engine.device, work_dir=work, output=output,
                            name=str(options.get("name", output.stem)), should_stop=is_cancelled or (lambda: False),
                            on_progress=progress, on_sample=keep_sample)
    except TrainingCancelled:
        shutil.rmtree(work, ignore_errors=True)  # a member's cancel is final; a crash keeps the checkpoint
        raise JobCancelled(request.job_id, done[0]) from None
    shutil.rmtree(work, ignore_errors=True)
    sample = samples[-1]
    parameters = a1111_parameters(settings.trigger, "", settings.sample_steps, "Model default", 5.0, settings.seed,
                                  sample.width, sample.height, model=spec.name,
                                  extra={"Lora trained": f"{options.get('name', output.stem)} "
                                                         f"({settings.kind}, rank {settings.rank}, {result.steps} steps)"})
    png = encode_png(sample, parameters)
    log.info("job %d trained LoRA %s in %.0f s (loss %.4f -> %.4f)", request.job_id, output.name, result.seconds,
             result.initial_loss, result.final_loss)
    return GenerationResult(request.job_id, [GeneratedImage(png, settings.seed, sample.width, sample.height)], None,
                            result.seconds, parameters=parameters,
                            notes=[f"Trigger word: {settings.trigger}", f"{result.steps} steps on {len(images)} images"])
