"""Canvas edits' pixel work: the job's mask, and the source pasted back outside it with a soft seam.

An inpainting model redraws the whole working image, and the VAE's round trip alone changes every
pixel a little; what the member keeps must stay exactly as it was. So after decoding, the result is
laid over the source through an alpha that is 1 inside the mask and falls smoothly to 0 over
``mask_blur`` pixels outside it: a pixel farther than that from the mask is the source's own value,
bit for bit. The seam's band lies outside the mask on purpose: whatever the canvas held under the
mask (a blank border, the old region) never shows through.

No torch here: the finishing thread runs this, off the device.
"""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image
from scipy import ndimage

# A mask pixel at or above this is "redraw" (masks drawn with soft brushes are greyscale).
MASK_THRESHOLD = 128


def decode_mask(text: str) -> Image.Image:
    """A job's mask (base64 PNG or WebP) as mode L; ValueError when it is not an image."""
    try:
        data = base64.b64decode(text, validate=True)
        with Image.open(io.BytesIO(data), formats=("PNG", "WEBP")) as image:
            image.load()
            return image.convert("L")
    except (binascii.Error, OSError, ValueError) as exc:
        raise ValueError(f"the mask is not a PNG or WebP image ({exc})") from None


def encode_mask(mask: Image.Image) -> str:
    """The inverse of decode_mask: a mode L PNG, base64 (what the bot puts in ``mask_image``)."""
    buffer = io.BytesIO()
    mask.convert("L").save(buffer, format="PNG", optimize=False, compress_level=1)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def redraw_area(mask: Image.Image) -> np.ndarray:
    """The mask as booleans (True = redraw)."""
    return np.asarray(mask.convert("L")) >= MASK_THRESHOLD


def seam_alpha(mask: Image.Image, blur: int) -> np.ndarray:
    """Per pixel, how much of the generated image to keep (H x W floats in [0, 1]).

    1 inside the mask; outside it, a smoothstep from 1 at the mask's edge to 0 at ``blur`` pixels
    (Euclidean distance) away, and exactly 0 beyond. ``blur`` 0: a hard edge.
    """
    inside = redraw_area(mask)
    if blur <= 0 or not inside.any():
        return inside.astype(np.float32)
    distance = ndimage.distance_transform_edt(~inside)
    t = np.clip(1.0 - distance / float(blur), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def paste_back(source: Image.Image, generated: Image.Image, alpha: np.ndarray) -> Image.Image:
    """``generated`` (resized to the source's size first) over ``source`` through ``alpha``; where
    alpha is 0 the source's pixels are returned untouched, where it is 1 the generated ones."""
    if generated.size != source.size:
        generated = generated.resize(source.size, Image.Resampling.LANCZOS)
    src = np.asarray(source.convert("RGB"))
    gen = np.asarray(generated.convert("RGB"))
    weight = alpha[..., None]
    blended = np.rint(src * (1.0 - weight) + gen * weight).clip(0, 255).astype(np.uint8)
    out = np.where(weight == 0.0, src, np.where(weight == 1.0, gen, blended))
    return Image.fromarray(out.astype(np.uint8))
