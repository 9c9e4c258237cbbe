"""A training set: the member's images, each cropped to its aspect bucket (or a square centre crop)
at the run's resolution, with its caption (the trigger word, plus a captioner's words where one runs)
and the SHA-256 of the bytes the member sent (written into the LoRA's metadata).

Aspect buckets keep a portrait a portrait: each image goes to the bucket (a width x height on the
64 px latent grid with about the area of resolution^2) whose aspect ratio is closest to its own,
is scaled to cover it and centre-cropped; the crop's offset is what SDXL's size conditioning takes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

from inference.limits import SIZE_GRID

# Captioner: an image -> a few words describing it (None: captions are the trigger word alone).
Captioner = Callable[[Image.Image], str]


@dataclass(frozen=True, slots=True)
class TrainingImage:
    image: Image.Image  # RGB, exactly (width, height) of its bucket
    caption: str
    sha256: str
    original_size: tuple[int, int]  # (height, width) before cropping, as SDXL's conditioning wants it
    crop_top_left: tuple[int, int]  # (top, left) of the crop in the scaled image


def buckets(resolution: int, *, grid: int = SIZE_GRID, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """(width, height) pairs on the grid with an area close to resolution^2, from 1:max_ratio to max_ratio:1."""
    area = resolution * resolution
    found = {(resolution, resolution)}
    width = grid
    while width <= resolution * max_ratio:
        height = max(grid, int(area / width) // grid * grid)
        if 1 / max_ratio <= width / height <= max_ratio:
            found.add((width, height))
        width += grid
    return sorted(found)


def bucket_for(size: tuple[int, int], resolution: int, *, enabled: bool = True) -> tuple[int, int]:
    if not enabled:
        return resolution, resolution
    width, height = size
    ratio = width / height
    return min(buckets(resolution), key=lambda b: (abs(b[0] / b[1] - ratio), abs(b[0] * b[1] - resolution**2)))


def caption_for(trigger: str, described: str | None) -> str:
    """DreamBooth-style: the trigger word first, so it binds to what every image shares."""
    described = (described or "").strip()
    return f"{trigger}, {described}" if described else trigger


def crop_to(image: Image.Image, target: tuple[int, int]) -> tuple[Image.Image, tuple[int, int]]:
    """Scale ``image`` to cover ``target`` (width, height) and centre-crop it; returns the crop and its (top, left)."""
    width, height = target
    scale = max(width / image.width, height / image.height)
    scaled = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))),
                          Image.Resampling.LANCZOS)
    left = (scaled.width - width) // 2
    top = (scaled.height - height) // 2
    return scaled.crop((left, top, left + width, top + height)), (top, left)


def prepare(images: Sequence[bytes], *, trigger: str, resolution: int, use_buckets: bool = True,
            captioner: Captioner | None = None) -> list[TrainingImage]:
    """Decode, orient (EXIF), crop and caption each image. The bot has checked them already; a file
    that fails to decode here raises PIL's own error."""
    prepared = []
    for data in images:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened).convert("RGB")
        target = bucket_for(image.size, resolution, enabled=use_buckets)
        cropped, offset = crop_to(image, target)
        described = captioner(image) if captioner is not None else None
        prepared.append(TrainingImage(image=cropped, caption=caption_for(trigger, described),
                                      sha256=hashlib.sha256(data).hexdigest(),
                                      original_size=(image.height, image.width), crop_top_left=offset))
    return prepared
