"""What the GPU side can tell a metrics endpoint, without the caller importing torch."""

from __future__ import annotations

import sys


def gpu_memory() -> dict[str, dict[str, int]]:
    """Bytes allocated, reserved and in total per CUDA device; empty without CUDA.

    Reads torch only if an engine already imported it: a scrape must never be what loads torch.
    """
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return {}
    return {
        f"cuda:{i}": {"allocated": torch.cuda.memory_allocated(i), "reserved": torch.cuda.memory_reserved(i),
                      "total": torch.cuda.get_device_properties(i).total_memory}
        for i in range(torch.cuda.device_count())
    }


def torch_build() -> tuple[str, str | None, list[tuple[str, int]]]:
    """torch's version, the CUDA version it was built for (None: CPU-only) and each CUDA device's name and
    memory in bytes, for ``atelier doctor``. Imports torch (seconds): call it from a command, not the bot."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    devices = [(torch.cuda.get_device_properties(i).name, torch.cuda.get_device_properties(i).total_memory)
               for i in range(count)]
    return str(torch.__version__), torch.version.cuda, devices
