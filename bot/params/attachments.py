"""Images members attach: downloaded with a byte cap, decoded defensively, normalised to RGB.

Only Discord attachments are accepted (the command option type guarantees the URL came from
Discord's own resolved data; nothing here fetches a URL a member typed), and only from Discord's
CDN hosts over HTTPS: a redirect is followed only while it stays on those hosts, so a crafted
attachment cannot make the bot fetch from inside its own network. The checks run in the
order that keeps a hostile file cheap: the size Discord reports, then a streamed download that
stops at the cap, then the image header (format and pixel count, before any pixel is decoded),
then the full decode (truncated files fail here). Every refusal is an InvalidOption whose message
says what was wrong and what to do.

Mode conversion is predictable, not clever: EXIF orientation is applied first (phones store
portraits sideways); alpha is composited onto white (what a viewer shows on a light background);
palette images go through RGBA when they carry transparency; 16-bit and 32-bit greyscale are
scaled (not clipped) to 8 bits; CMYK uses Pillow's conversion (Adobe-inverted JPEGs are handled
by its JPEG reader). Animated images use their first frame. Truncated files are refused as long
as Pillow's process-wide ImageFile.LOAD_TRUNCATED_IMAGES stays False (its default; nothing here sets it).
"""

from __future__ import annotations

import asyncio
import io
import logging
import warnings
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from bot.errors import InvalidOption
from inference.media import encode_job_image

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
# 16.8 MP (4096x4096): more than any phone photo members upload for img2img, and far below the
# ~89 MP where Pillow starts warning about decompression bombs.
MAX_PIXELS = 4096 * 4096
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
_FORMAT_NAMES = "PNG, JPEG, WebP, GIF or BMP"
_CHUNK = 64 * 1024
_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_read=20)
# Where Discord serves attachments (scheme://host[:port]); the only origins a download may touch.
CDN_ORIGINS: frozenset[str] = frozenset({"https://cdn.discordapp.com", "https://media.discordapp.net"})
_MAX_REDIRECTS = 3
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class AttachmentLike(Protocol):
    """What discord.Attachment offers that this module uses (tests pass simple stand-ins)."""

    filename: str
    size: int
    url: str


@dataclass(slots=True)
class InputImage:
    """A member's image, ready for a job: RGB, upright, with where it came from."""

    image: Image.Image
    filename: str
    original_format: str

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


async def download(attachment: AttachmentLike, *, max_bytes: int | None = None,
                   session: aiohttp.ClientSession | None = None) -> bytes:
    """The attachment's bytes, refusing anything larger than ``max_bytes`` (default MAX_BYTES) before and while reading."""
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    name = attachment.filename
    if attachment.size > max_bytes:
        raise InvalidOption(f"`{name}` is {_mib(attachment.size)}; images can be at most {_mib(max_bytes)}.")
    if not _on_cdn(attachment.url):
        log.warning("refused to fetch attachment %s from outside Discord's CDN", name)
        raise InvalidOption(f"`{name}` is not a Discord attachment.")
    owned = session is None
    client = session or aiohttp.ClientSession(timeout=_TIMEOUT)
    try:
        url = attachment.url
        for _ in range(_MAX_REDIRECTS + 1):
            async with client.get(url, allow_redirects=False) as response:
                if response.status not in _REDIRECTS:
                    return await _read(response, name, max_bytes)
                url = urljoin(url, response.headers.get("Location", ""))
            if not _on_cdn(url):
                log.warning("attachment %s redirected outside Discord's CDN; not followed", name)
                raise InvalidOption(f"`{name}` could not be downloaded from Discord; attach it again.")
        raise InvalidOption(f"`{name}` could not be downloaded (too many redirects); attach it again.")
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.info("download of attachment %s failed: %s", name, exc)
        raise InvalidOption(f"`{name}` could not be downloaded; attach it again.") from None
    finally:
        if owned:
            await client.close()


def _on_cdn(url: str) -> bool:
    """Whether ``url`` is on one of Discord's attachment origins (CDN_ORIGINS)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}" in CDN_ORIGINS and "@" not in parts.netloc


async def _read(response: aiohttp.ClientResponse, name: str, max_bytes: int) -> bytes:
    """The body of a final (non-redirect) response, cut at ``max_bytes``."""
    if response.status != 200:
        raise InvalidOption(f"`{name}` could not be downloaded (HTTP {response.status}); attach it again.")
    declared = response.content_length
    if declared is not None and declared > max_bytes:
        raise InvalidOption(f"`{name}` is {_mib(declared)}; images can be at most {_mib(max_bytes)}.")
    buffer = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK):
        buffer += chunk
        if len(buffer) > max_bytes:
            # Discord's reported size lied, or the file changed: stop reading at the cap.
            raise InvalidOption(f"`{name}` is larger than {_mib(max_bytes)}; attach a smaller image.")
    return bytes(buffer)


def decode(data: bytes, *, filename: str = "image", max_pixels: int = MAX_PIXELS) -> InputImage:
    """Bytes -> an upright RGB image, or InvalidOption saying exactly why not. Blocking (CPU)."""
    if not data:
        raise InvalidOption(f"`{filename}` is empty.")
    with warnings.catch_warnings():
        # Pillow warns (rather than raises) between MAX_IMAGE_PIXELS and twice that: treat as a bomb.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except UnidentifiedImageError:
            raise InvalidOption(f"`{filename}` is not an image Atelier can read; attach a {_FORMAT_NAMES} file.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidOption(_too_many_pixels(filename, None, max_pixels)) from None
        except (OSError, SyntaxError, ValueError):
            raise InvalidOption(f"`{filename}` is damaged (its header cannot be read); export it again.") from None
        width, height = image.size
        if width < 1 or height < 1:
            raise InvalidOption(f"`{filename}` has no pixels.")
        if width * height > max_pixels:
            raise InvalidOption(_too_many_pixels(filename, (width, height), max_pixels))
        fmt = image.format or "?"
        try:
            image.seek(0)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidOption(_too_many_pixels(filename, (width, height), max_pixels)) from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise InvalidOption(f"`{filename}` is truncated or damaged; upload the complete file again.") from None
    return InputImage(to_rgb(image), filename, fmt)


def _too_many_pixels(filename: str, size: tuple[int, int] | None, max_pixels: int) -> str:
    shown = f" is {size[0]}×{size[1]} pixels ({size[0] * size[1] / 1e6:.1f} MP);" if size else " has too many pixels;"
    return f"`{filename}`{shown} images can have at most {max_pixels / 1e6:.1f} MP. Resize it and try again."


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB: EXIF orientation applied, alpha on white, deep greyscale scaled to 8 bits."""
    upright = ImageOps.exif_transpose(image)
    if upright is None:  # only when in_place=True; keeps type checkers honest
        upright = image
    mode = upright.mode
    if mode == "RGB":
        return upright
    if mode == "P":
        upright = upright.convert("RGBA" if "transparency" in upright.info else "RGB")
        mode = upright.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(upright, dtype=np.float64)
        grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        values = np.asarray(upright, dtype=np.float64)
        grey = np.clip(np.round(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = upright.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return upright.convert("RGB")


async def load(attachment: AttachmentLike, *, max_bytes: int | None = None, max_pixels: int = MAX_PIXELS,
               session: aiohttp.ClientSession | None = None) -> InputImage:
    """Download and decode an attachment; the decode runs off the event loop."""
    data = await download(attachment, max_bytes=max_bytes, session=session)
    return await asyncio.to_thread(decode, data, filename=attachment.filename, max_pixels=max_pixels)


def encode_for_job(image: Image.Image) -> str:
    """A job's input image as text in its parameters (lossless WebP, base64), the form the job
    service takes; it stores the bytes apart from the job row (bot/services/inputs.py).

    The callers cap the pixel count first (img2img inputs are fitted to the model's size, upscale
    inputs to the upscaler's limit). Lossless, because an upscaler must see the member's pixels,
    not a second generation of compression artefacts.
    """
    return encode_job_image(image)
