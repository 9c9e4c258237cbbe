"""Single-file checkpoints (A1111 / Civitai ``.safetensors``): which family a file is, its hash, a folder's files.

Torch-free on purpose: the bot reads a folder of checkpoints to list them and autocomplete their
names, and only needs each file's safetensors header (a few hundred KB) for that, never its weights.
Pickled checkpoints (``.ckpt``, ``.pt``, ``.bin``) are never loaded: unpickling runs code from the
file, and every model Civitai serves is also published as ``.safetensors``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
PICKLED_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")

# Families a single file may hold, and the registry kinds that accept each one.
# Inpainting checkpoints (9 UNet input channels) are families of their own: they only serve canvas edits.
FAMILY_KINDS = {"sd15": ("sd15",), "sdxl": ("sdxl", "sdxl-lightning", "sdxl-turbo"),
                "sd15-inpaint": ("sd15-inpaint",), "sdxl-inpaint": ("sdxl-inpaint",)}
# Hub repos whose diffusers configs describe each family (the architecture, tokenizers, scheduler).
DEFAULT_CONFIGS = {"sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
                   "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
                   "sd15-inpaint": "stable-diffusion-v1-5/stable-diffusion-inpainting",
                   "sdxl-inpaint": "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"}
FAMILY_NAMES = {"sd15": "SD 1.5", "sdxl": "SDXL", "sd15-inpaint": "SD 1.5 inpainting",
                "sdxl-inpaint": "SDXL inpainting"}
# UNet input channels: latents (4), or latents + mask + masked-image latents (9) for inpainting.
_INPAINT_CHANNELS = 9

_UNET = "model.diffusion_model."
_SD1_TEXT = "cond_stage_model.transformer."
_SD2_TEXT = "cond_stage_model.model."
_SDXL_TEXT_2 = "conditioner.embedders.1."
_SDXL_REFINER = "conditioner.embedders.0.model."
_INPUT_CONV = "model.diffusion_model.input_blocks.0.0.weight"
_NAME_UNSAFE = re.compile(r"[^\w.+-]+")
_MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(ValueError):
    """A file cannot be served as a single-file checkpoint; the message says why in one line."""


def read_header(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        raw = handle.read(8)
        if len(raw) != 8:
            raise ValueError("not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", raw)
        if length > _MAX_HEADER:
            raise ValueError("not a safetensors file (header too large)")
        header = json.loads(handle.read(length))
    if not isinstance(header, dict):
        raise ValueError("not a safetensors file (bad header)")
    return header


def kind_of(header: dict[str, object]) -> str:
    """The family ("sd15", "sdxl", or their "-inpaint" kinds) from the tensor names of an original-layout
    checkpoint (its safetensors header).

    SDXL keeps its OpenCLIP bigG encoder under ``conditioner.embedders.1``; SD 1.x keeps CLIP ViT-L
    under ``cond_stage_model.transformer``; an inpainting UNet takes 9 input channels. Anything else
    (SD 2.x, a refiner, an instruct UNet with 8 input channels, a LoRA or VAE file, a diffusers-layout
    file) is refused with what it looks like.
    """
    keys = [key for key in header if key != "__metadata__"]
    if not any(key.startswith(_UNET) for key in keys):
        if any(key.startswith(("lora_", "lora_unet_")) or ".lora_" in key for key in keys):
            raise CheckpointError("a LoRA, not a checkpoint (put it in ATELIER_LORA_DIR)")
        if any(key.startswith(("encoder.", "decoder.", "first_stage_model.")) for key in keys):
            raise CheckpointError("a VAE, not a checkpoint (name it in an entry's `vae`)")
        raise CheckpointError("no UNet in the original layout (model.diffusion_model.*)")
    conv = header.get(_INPUT_CONV)
    shape = conv.get("shape") if isinstance(conv, dict) else None
    channels = shape[1] if isinstance(shape, list) and len(shape) > 1 else 4
    if channels not in (4, _INPAINT_CHANNELS):
        raise CheckpointError(f"an instruct or other image-conditioned model ({channels} input channels); only "
                              "text-to-image and inpainting checkpoints are served")
    suffix = "-inpaint" if channels == _INPAINT_CHANNELS else ""
    if any(key.startswith(_SDXL_TEXT_2) for key in keys):
        return "sdxl" + suffix
    if any(key.startswith(_SDXL_REFINER) for key in keys):
        raise CheckpointError("an SDXL refiner, which cannot draw from a prompt alone")
    if any(key.startswith(_SD2_TEXT) for key in keys):
        raise CheckpointError("an SD 2.x checkpoint; serve it as a diffusers folder (kind sd2)")
    if any(key.startswith(_SD1_TEXT) for key in keys):
        return "sd15" + suffix
    raise CheckpointError("no text encoder in the original layout")


def detect(path: Path) -> str:
    """The family of the checkpoint at ``path`` (a FAMILY_KINDS key); CheckpointError says why not."""
    if path.suffix.lower() in PICKLED_SUFFIXES:
        raise CheckpointError(f"{path.name} is a pickled checkpoint, which Atelier never loads (loading one runs "
                              "code from the file); use the model's .safetensors release")
    try:
        header = read_header(path)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None
    return kind_of(header)


def model_name(path: Path) -> str:
    """The name a folder's checkpoint is served under: its file name without the suffix, spaces folded."""
    return _NAME_UNSAFE.sub("-", path.stem).strip("-")[:90] or "checkpoint"


def scan(folder: Path) -> dict[str, tuple[Path, str]]:
    """Every servable checkpoint under ``folder`` (subfolders too): name -> (file, family).

    Files that cannot be served are skipped with a WARNING that says why, so an admin dropping a
    LoRA or an inpainting model in the folder learns it from the log rather than from a member.
    """
    found: dict[str, tuple[Path, str]] = {}
    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if not path.is_file() or (suffix != SUFFIX and suffix not in PICKLED_SUFFIXES):
            continue
        try:
            family = detect(path)
        except CheckpointError as exc:
            log.warning("ATELIER_MODELS_DIR: skipping %s: %s", path, exc)
            continue
        name = model_name(path)
        if name in found:
            log.warning("ATELIER_MODELS_DIR: %s and %s have the same name %r; serving the first",
                        found[name][0], path, name)
            continue
        found[name] = (path, family)
    return found


_hashes: dict[tuple[str, int, int, bool], str] = {}


def file_sha256(path: Path, *, after_header: bool = False) -> str:
    """The SHA-256 of a file (``after_header``: of a safetensors file's tensor data only), in hex.

    Reads the whole file once per (path, size, modification time); call it off the event loop.
    """
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, after_header)
    cached = _hashes.get(key)
    if cached is None:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            if after_header:
                (length,) = struct.unpack("<Q", handle.read(8))
                handle.seek(8 + length)
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
        cached = _hashes[key] = digest.hexdigest()
    return cached


def short_hash(path: Path) -> str:
    """A1111's "Model hash": the first 10 hex digits of the file's SHA-256, which Civitai matches on."""
    return file_sha256(path)[:10]
