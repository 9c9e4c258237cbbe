"""Loading single-file checkpoints (A1111 / Civitai ``.safetensors``) and separate VAEs.

A checkpoint holds weights only; the architecture, tokenizers and noise schedule come from the
diffusers config of its family (``ModelSpec.extra["config"]``: a folder, or a hub repo whose config
files are in the local cache or, failing that, fetched once: a few KB, never its weights). diffusers'
``from_single_file`` maps the original key layout onto that config.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKL, DiffusionPipeline

from inference.models import ModelSpec

log = logging.getLogger(__name__)

# The files of a diffusers repo that describe it, without any weights.
CONFIG_PATTERNS = ["*.json", "*/*.json", "*/*.txt", "*/*.model"]


class SingleFileError(OSError):
    """A checkpoint or its config cannot be loaded; the message says which and what to do."""


def config_folder(config: str) -> str:
    """A local folder holding the diffusers configs ``config`` names (a folder or a hub repo id)."""
    if Path(config).is_dir():
        return config
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(config, allow_patterns=CONFIG_PATTERNS, local_files_only=True)
    except Exception:  # not cached: fetch the config files alone (the hub client raises many types)
        pass
    try:
        folder = snapshot_download(config, allow_patterns=CONFIG_PATTERNS)
    except Exception as exc:
        raise SingleFileError(
            f"the checkpoint needs the diffusers config of {config!r}, which is not in the Hugging Face cache and "
            f"could not be fetched ({type(exc).__name__}); set `config` on the entry (or [single_file] in "
            "models.toml) to a local diffusers folder of the same family") from None
    log.info("fetched the config files of %s for a single-file checkpoint", config)
    return folder


def load_pipeline(cls: type[DiffusionPipeline], spec: ModelSpec, dtype: torch.dtype,
                  components: dict[str, Any]) -> DiffusionPipeline:
    """The pipeline of ``spec``'s checkpoint, on the CPU, with ``components`` (e.g. a VAE) in place of its own."""
    config = config_folder(str(spec.extra["config"]))
    try:
        return cls.from_single_file(spec.source, config=config, dtype=dtype, local_files_only=True, **components)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SingleFileError(f"{spec.source}: not a loadable {spec.kind} checkpoint with the config of "
                              f"{spec.extra['config']} ({first[:200]})") from exc


def load_vae(spec: ModelSpec, dtype: torch.dtype) -> AutoencoderKL:
    """The entry's own VAE: a .safetensors file (original or diffusers layout), a folder or a hub repo."""
    source = str(spec.extra["vae"])
    try:
        if source.lower().endswith(".safetensors"):
            family_config = str(spec.extra["config"]) if spec.single_file else spec.source
            return AutoencoderKL.from_single_file(source, config=config_folder(family_config), subfolder="vae",
                                                  dtype=dtype, local_files_only=True)
        subfolder = "vae" if (Path(source) / "vae").is_dir() else None
        return AutoencoderKL.from_pretrained(source, subfolder=subfolder, dtype=dtype)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        if isinstance(exc, SingleFileError):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SingleFileError(f"vae {source}: cannot be loaded ({first[:200]})") from exc
