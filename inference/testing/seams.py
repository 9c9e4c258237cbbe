"""How well an image tiles, measured in a way random-weight models can pass or fail.

Tiny models draw noise, so edge pixels of any image differ about as much as any two neighbours;
what circular padding changes is that the opposite edges become neighbours: the last column is as
correlated with the first as any column with the next. ``seam_difference`` is 1 minus the Pearson
correlation of the opposite edges (columns and rows, averaged): near the image's own neighbour
value (``interior_difference``) for a tile, near 1 for an image that does not wrap.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    scale = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return 1.0 - (float((a * b).sum()) / scale if scale else 1.0)


def seam_difference(image: Image.Image) -> float:
    """1 - correlation between the last and first columns, and the last and first rows (averaged)."""
    pixels = np.asarray(image.convert("RGB")).astype(np.float64)
    return (_difference(pixels[:, -1], pixels[:, 0]) + _difference(pixels[-1], pixels[0])) / 2


def interior_difference(image: Image.Image) -> float:
    """The same measure across the image's middle column and row: what a seamless wrap looks like."""
    pixels = np.asarray(image.convert("RGB")).astype(np.float64)
    h, w = pixels.shape[:2]
    return (_difference(pixels[:, w // 2 - 1], pixels[:, w // 2]) + _difference(pixels[h // 2 - 1], pixels[h // 2])) / 2
