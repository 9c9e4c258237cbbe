"""The split between a job's device work and its files.

The device thread only runs pipelines: a job's images leave the device as uint8 arrays (converted
there, so a quarter of the bytes cross to the host), and the PNGs, the grid and the A1111 text are
made afterwards on another thread by ``Finishing.finish``, while the device already runs the next
job. ``Engine.run`` does both in a row for callers that want the finished result at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from inference.types import GenerationResult


@dataclass(slots=True)
class Finishing:
    """A job whose device work is done; ``finish()`` makes its files, on any thread, once."""

    job_id: int
    make: Callable[[], GenerationResult]

    def finish(self) -> GenerationResult:
        return self.make()

    @classmethod
    def done(cls, result: GenerationResult) -> Finishing:
        """A result that was finished on the device thread (runners that encode their own files)."""
        return cls(result.job_id, lambda: result)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """A pipeline's ``output_type="pt"`` images (N, C, H, W in [0, 1]) as N x H x W x C uint8 on the
    host, rounded exactly as diffusers rounds for ``output_type="pil"``."""
    return (images.permute(0, 2, 3, 1).float() * 255).round().to(torch.uint8).cpu().numpy()


def as_pil(images: list[Any]) -> list[Image.Image]:
    """PIL images from what the runners return (uint8 arrays or PIL images already)."""
    return [Image.fromarray(image) if isinstance(image, np.ndarray) else image for image in images]
