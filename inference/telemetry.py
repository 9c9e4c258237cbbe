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
