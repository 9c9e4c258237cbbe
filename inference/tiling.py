"""Seamless tiles (``/imagine tile:true``): the UNet's and VAE's convolutions pad circularly.

With circular padding every convolution sees the image as a torus: the left edge's neighbours are
the right edge's pixels, so the result repeats without a seam (A1111's "Tiling"). The modules are
shared by every pipeline over the same weights (img2img, inpaint, the next job), so the padding is
switched for one job only and put back afterwards, whatever happens inside (error, cancel).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn


def padded_convolutions(pipe: Any) -> list[nn.Conv2d]:
    """The pipeline's UNet and VAE convolutions that pad (1x1 convolutions do not)."""
    found: list[nn.Conv2d] = []
    for part in (getattr(pipe, "unet", None), getattr(pipe, "vae", None)):
        if part is None:
            continue
        for module in part.modules():
            if isinstance(module, nn.Conv2d) and any(module._reversed_padding_repeated_twice):
                found.append(module)
    return found


@contextmanager
def seamless(pipe: Any, enabled: bool = True) -> Iterator[None]:
    """``pipe``'s convolutions pad circularly inside the block (when ``enabled``), as before after it."""
    if not enabled:
        yield
        return
    convolutions = padded_convolutions(pipe)
    previous = [conv.padding_mode for conv in convolutions]
    try:
        for conv in convolutions:
            conv.padding_mode = "circular"
        yield
    finally:
        for conv, mode in zip(convolutions, previous, strict=True):
            conv.padding_mode = mode
