"""One DreamBooth-style LoRA training run on SD 1.5 or SDXL, in this process.

The run loads its own copy of the base pipeline (the adapter is injected into its UNet, so nothing
reaches a pipeline that serves generations), encodes every image's latents and caption once, moves
the VAE and text encoders off the GPU, then trains a LoRA on the UNet's attention projections.

- ``should_stop`` is called before every step: a cancelled job stops within one step.
- Every ``checkpoint_every`` steps the adapter, the optimiser, the step and the noise generator's
  state go to ``work_dir/checkpoint.pt``; a run started again with the same settings and images
  continues from there, and ends with the same weights as a run never interrupted (same device).
- Every ``sample_every`` steps (and at the end) ``on_sample`` gets an image drawn with the LoRA.
- The result is a kohya-layout ``.safetensors`` file (inference/training/kohya.py).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, DiffusionPipeline
from PIL import Image

from inference.memory import release_cached
from inference.training import core, kohya
from inference.training.dataset import Captioner, TrainingImage, prepare
from inference.training.settings import TrainingSettings

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
# Fixed draws of noise and timesteps the loss is measured on before and after training.
EVAL_DRAWS = 4


class TrainingCancelled(Exception):
    """``should_stop`` said stop; the last checkpoint stays, so the run could resume."""


@dataclass(frozen=True, slots=True)
class TrainingResult:
    path: Path
    steps: int
    resumed_from: int  # 0 for a run that started from scratch
    initial_loss: float
    final_loss: float
    image_hashes: list[str]
    seconds: float


ProgressCallback = Callable[[int, int, float], None]  # (step, steps, loss)
SampleCallback = Callable[[int, Image.Image], None]  # (step, image)


def load_pipeline(source: str, family: str) -> Any:
    """The base model in fp32 on the CPU, as from_pretrained reads a diffusers folder or hub id."""
    extra: dict[str, Any] = {"safety_checker": None, "requires_safety_checker": False} if family == "sd1" else {}
    pipe = DiffusionPipeline.from_pretrained(source, dtype=torch.float32, **extra)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def fingerprint(settings: TrainingSettings, source: str, hashes: list[str]) -> str:
    """What a checkpoint must match to be resumed: the same settings, base and images."""
    return hashlib.sha256(repr((settings, source, hashes)).encode()).hexdigest()


def train_lora(settings: TrainingSettings, images: Sequence[bytes], *, source: str, device: str, work_dir: Path,
               output: Path, name: str, should_stop: Callable[[], bool] = lambda: False,
               on_progress: ProgressCallback | None = None, on_sample: SampleCallback | None = None,
               captioner: Captioner | None = None, pipeline: Any = None) -> TrainingResult:
    """Train, checkpointing into ``work_dir``, and write the LoRA to ``output``. ``pipeline``: an
    already loaded base pipeline this run may own (tests, benches); else it is loaded from ``source``."""
    started = time.time()
    prepared = prepare(images, trigger=settings.trigger, resolution=settings.resolution,
                       use_buckets=settings.buckets, captioner=captioner)
    hashes = [item.sha256 for item in prepared]
    pipe = pipeline if pipeline is not None else load_pipeline(source, settings.family)
    dtype = core.train_dtype(device)
    examples = _cache_examples(pipe, prepared, device=device, family=settings.family)
    offload = device.startswith("cuda")
    if offload:
        _move(pipe, "cpu")
        release_cached(device)
    unet = pipe.unet.to(device)
    if dtype != torch.float32:
        unet.to(dtype)
    params = core.add_lora(unet, rank=settings.rank, alpha=settings.lora_alpha, seed=settings.seed)
    if offload:
        unet.enable_gradient_checkpointing()
    optimizer = core.make_optimizer(params, lr=settings.learning_rate, device=device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    generator = torch.Generator().manual_seed(settings.seed)
    key = fingerprint(settings, source, hashes)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_path = work_dir / CHECKPOINT

    step, initial_loss = 0, None
    saved = _read_checkpoint(checkpoint_path, key)
    if saved is not None:
        core.load_lora_state(unet, saved["lora"])
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        generator.set_state(saved["generator"])
        step, initial_loss = int(saved["step"]), float(saved["initial_loss"])
        log.info("training %s resumes at step %d of %d", name, step, settings.steps)
    resumed_from = step
    if initial_loss is None:
        initial_loss = _eval_loss(unet, scheduler, examples, settings.seed, dtype, device)

    unet.train()
    loss_value = initial_loss
    while step < settings.steps:
        if should_stop():
            raise TrainingCancelled(f"training {name} cancelled at step {step}")
        example = examples[_order(settings.seed, step, len(examples))]
        loss = core.loss_for(unet, scheduler, example, generator=generator, dtype=dtype, device=device)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        loss_value = float(loss.detach())
        if on_progress is not None:
            on_progress(step, settings.steps, loss_value)
        if step % settings.checkpoint_every == 0 and step < settings.steps:
            _write_checkpoint(checkpoint_path, key=key, step=step, unet=unet, optimizer=optimizer, scaler=scaler,
                              generator=generator, initial_loss=initial_loss)
        if on_sample is not None and (step % settings.sample_every == 0 or step == settings.steps):
            on_sample(step, sample(pipe, settings, device=device, dtype=dtype, offloaded=offload))
            unet.train()

    final_loss = _eval_loss(unet, scheduler, examples, settings.seed, dtype, device)
    meta = kohya.metadata(settings, name=name, steps_done=step, image_hashes=hashes,
                          captions=[item.caption for item in prepared], started_at=started, finished_at=time.time())
    kohya.save(output, core.lora_state(unet), meta, alpha=settings.lora_alpha)
    checkpoint_path.unlink(missing_ok=True)
    del unet, optimizer, pipe
    if offload:
        release_cached(device)
    return TrainingResult(path=output, steps=step, resumed_from=resumed_from, initial_loss=initial_loss,
                          final_loss=final_loss, image_hashes=hashes, seconds=time.time() - started)


def _order(seed: int, step: int, count: int) -> int:
    """The example for ``step``: each epoch a fresh permutation derived from the seed and the epoch alone,
    so a resumed run walks the same order without saving it."""
    epoch, position = divmod(step, count)
    return int(torch.randperm(count, generator=torch.Generator().manual_seed(seed * 7919 + epoch))[position])


@torch.no_grad()
def _cache_examples(pipe: Any, prepared: list[TrainingImage], *, device: str, family: str) -> list[core.Example]:
    """Latents (VAE in fp32: SDXL's VAE overflows in fp16) and text conditioning, computed once."""
    vae = pipe.vae.to(device)  # loaded in fp32
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if family == "sdxl" else [])
    for encoder in encoders:
        encoder.to(device)
    factor = vae.config.scaling_factor
    examples = []
    for item in prepared:
        pixels = torch.from_numpy(_array(item.image)).to(device).permute(2, 0, 1).unsqueeze(0) * 2 - 1
        latents = (vae.encode(pixels).latent_dist.mean * factor).cpu()
        if family == "sdxl":
            text, _, pooled, _ = pipe.encode_prompt(item.caption, device=torch.device(device), num_images_per_prompt=1,
                                                    do_classifier_free_guidance=False)
            width, height = item.image.size
            time_ids = torch.tensor([[*item.original_size, *item.crop_top_left, height, width]], dtype=torch.float32)
            examples.append(core.Example(latents, text.float().cpu(), pooled.float().cpu(), time_ids))
        else:
            text, _ = pipe.encode_prompt(item.caption, torch.device(device), 1, False)
            examples.append(core.Example(latents, text.float().cpu()))
    return examples


def _array(image: Image.Image) -> Any:
    import numpy as np

    return np.asarray(image, dtype=np.float32) / 255.0


def _move(pipe: Any, device: str) -> None:
    for name in ("vae", "text_encoder", "text_encoder_2"):
        part = getattr(pipe, name, None)
        if part is not None:
            part.to(device)


@torch.no_grad()
def _eval_loss(unet: Any, scheduler: Any, examples: list[core.Example], seed: int, dtype: torch.dtype,
               device: str) -> float:
    """The mean loss on fixed noise and timesteps: comparable before and after training."""
    unet.eval()
    generator = torch.Generator().manual_seed(seed + 1)
    total = 0.0
    for _ in range(EVAL_DRAWS):
        for example in examples:
            total += float(core.loss_for(unet, scheduler, example, generator=generator, dtype=dtype, device=device))
    unet.train()
    return total / (EVAL_DRAWS * len(examples))


def sample(pipe: Any, settings: TrainingSettings, *, device: str, dtype: torch.dtype, offloaded: bool) -> Image.Image:
    """One image of the trigger word with the LoRA as trained so far (fixed seed, so samples compare)."""
    pipe.unet.eval()
    if offloaded:
        _move(pipe, device)
        pipe.text_encoder.to(dtype)
        if getattr(pipe, "text_encoder_2", None) is not None:
            pipe.text_encoder_2.to(dtype)
    try:
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
            result = pipe(prompt=settings.trigger, num_inference_steps=settings.sample_steps,
                          height=settings.resolution, width=settings.resolution, guidance_scale=5.0,
                          generator=torch.Generator().manual_seed(settings.seed), output_type="pil")
        return result.images[0]
    finally:
        if offloaded:
            _move(pipe, "cpu")
            release_cached(device)


def _write_checkpoint(path: Path, *, key: str, step: int, unet: Any, optimizer: torch.optim.Optimizer,
                      scaler: Any, generator: torch.Generator, initial_loss: float) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save({"fingerprint": key, "step": step, "lora": {k: v.cpu() for k, v in core.lora_state(unet).items()},
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
                "generator": generator.get_state(), "initial_loss": initial_loss}, partial)
    os.replace(partial, path)  # a kill while writing leaves the previous checkpoint whole


def _read_checkpoint(path: Path, key: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        log.warning("training checkpoint %s is unreadable (%s); starting over", path, exc)
        return None
    if saved.get("fingerprint") != key:
        log.warning("training checkpoint %s is for other settings or images; starting over", path)
        return None
    return saved
