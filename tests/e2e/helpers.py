"""Small helpers the end-to-end tests share."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image


def has_image(message: Any) -> bool:
    """The message exists and carries a picture (PNG, or the WebP/JPEG a too-large result became)."""
    return message is not None and any(a.filename.endswith((".png", ".webp", ".jpg")) for a in message.attachments)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
