"""How much memory loaded models take, how much they may take, and what running out looks like.

The model cache (inference/cache.py) keeps each device's resident models within a budget: a model
is a set of modules (UNet, VAE, text encoders), and pipelines built over each other share modules,
so sizes are always summed over distinct modules, never per pipeline.
"""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterable
from typing import Any

import torch

log = logging.getLogger(__name__)

# Room left on a GPU beside the weights for activations, the VAE decode and the CUDA context: SDXL at
# 1024x1024 with a batch of four needs several GB above its weights.
MIN_HEADROOM = 4 * 1024**3
HEADROOM_SHARE = 0.2
# Host memory models parked off the GPU may use when ATELIER_RAM_BUDGET is unset.
RAM_SHARE = 0.5


def modules_of(pipe: Any) -> list[torch.nn.Module]:
    """The weight-holding parts of a pipeline (or of a bare module such as an upscaler network)."""
    if isinstance(pipe, torch.nn.Module):
        return [pipe]
    components = getattr(pipe, "components", {}) or {}
    return [value for value in components.values() if isinstance(value, torch.nn.Module)]


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (what moving it between devices moves)."""
    total = sum(p.numel() * p.element_size() for p in module.parameters())
    return total + sum(b.numel() * b.element_size() for b in module.buffers())


def distinct_bytes(modules: Iterable[torch.nn.Module]) -> int:
    """Bytes of the distinct modules among ``modules`` (a module two pipelines share counts once)."""
    seen: dict[int, torch.nn.Module] = {}
    for module in modules:
        seen.setdefault(id(module), module)
    return sum(module_bytes(module) for module in seen.values())


def device_budget(device: str, configured: int | None) -> int | None:
    """Bytes of models ``device`` may hold: the setting, else a GPU's memory less headroom.

    None (no limit) for a CPU device without a setting: its models already live in host memory.
    """
    if configured is not None:
        return configured
    target = torch.device(device)
    if target.type != "cuda" or not torch.cuda.is_available():
        return None
    total = torch.cuda.get_device_properties(target).total_memory
    return max(total - max(MIN_HEADROOM, int(total * HEADROOM_SHARE)), 0)


def ram_budget(configured: int | None) -> int | None:
    """Bytes of host memory for models moved off their device: the setting, else half the host's memory."""
    if configured is not None:
        return configured
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * RAM_SHARE)
    except (ValueError, OSError, AttributeError):  # not a POSIX host: no limit rather than a guess
        return None


def is_out_of_memory(exc: BaseException) -> bool:
    """A device allocation failed (CUDA's typed error, or another backend's "out of memory" message)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release_cached(device: str) -> None:
    """Give freed memory back to the device after references were dropped (gc first: pipelines hold cycles)."""
    gc.collect()
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()



def gb(size: int) -> str:
    """Bytes as the log lines give them: 6.94 GB."""
    return f"{size / 1e9:.2f} GB"
