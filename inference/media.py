"""Image files as users receive them: PNG metadata, grids, and re-encoding to fit upload limits.

No torch here: the bot imports this to re-encode oversized results and to read parameters back
from a posted image. Every output declares how it was made twice over: the AUTOMATIC1111
``parameters`` text (so Civitai and A1111's PNG Info can reproduce it) and the IPTC digital source
type "trainedAlgorithmicMedia" in XMP (the marker platforms read to label AI-generated media).
"""

from __future__ import annotations

import base64
import io
import logging
import math
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

SOFTWARE = "Atelier"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"

# zlib level 1: much faster than the default level for files only a little larger; Discord's
# upload limit is handled by fit_to_limit anyway. See encode_png.
PNG_COMPRESS_LEVEL = 1

_EXIF_IFD = 0x8769
_USER_COMMENT = 0x9286
_IMAGE_DESCRIPTION = 0x010E
_SOFTWARE_TAG = 0x0131
_WEBP_QUALITIES = (90, 80, 70, 60, 50)
_JPEG_QUALITIES = (85, 75, 65, 50)
_MIN_SIDE = 64


class TooLarge(ValueError):
    """The image cannot be brought under the size limit without becoming useless."""

    def __init__(self, limit: int, smallest: int) -> None:
        super().__init__(
            f"Image cannot be made smaller than {limit} bytes (smallest attempt: {smallest} bytes)"
        )
        self.limit = limit
        self.smallest = smallest


def a1111_parameters(
    prompt: str,
    negative: str,
    steps: int,
    sampler: str,
    cfg: float,
    seed: int,
    width: int,
    height: int,
    model: str,
    extra: Mapping[str, Any] | None = None,
    *,
    model_hash: str | None = None,
) -> str:
    """The ``parameters`` text in AUTOMATIC1111's layout, which Civitai and A1111 parse.

    Line 1 is the prompt, then ``Negative prompt: ...`` (only when there is one), then one line of
    ``Key: value`` pairs starting with Steps, Sampler, (Schedule type,) CFG scale, Seed, Size,
    (Model hash,) Model.
    """
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    pairs: list[tuple[str, Any]] = [
        ("Steps", steps),
        ("Sampler", sampler),
        # A1111 writes the schedule type right after the sampler (Karras, SGM Uniform, ...).
        *([("Schedule type", extra["Schedule type"])] if extra and extra.get("Schedule type") else []),
        ("CFG scale", f"{cfg:g}"),
        ("Seed", seed),
        ("Size", f"{width}x{height}"),
        *([("Model hash", model_hash)] if model_hash else []),
        ("Model", model),
    ]
    pairs.extend((key, value) for key, value in (extra or {}).items() if key != "Schedule type")
    lines.append(", ".join(f"{key}: {_a1111_value(value)}" for key, value in pairs))
    return "\n".join(lines)


def _a1111_value(value: Any) -> str:
    # A1111 quotes values holding its separators so its parser can split the line.
    text = str(value)
    if any(ch in text for ch in ',:"\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def xmp_packet(parameters: str) -> bytes:
    """An XMP packet declaring the image AI-generated (IPTC DigitalSourceType), with the parameters."""
    description = _xml_escape(parameters)
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/">\n'
        f"   <Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>\n"
        f"   <xmp:CreatorTool>{SOFTWARE}</xmp:CreatorTool>\n"
        '   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
        f"{description}</rdf:li></rdf:Alt></dc:description>\n"
        "  </rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def encode_png(image: Image.Image, parameters: str) -> bytes:
    """PNG bytes carrying the A1111 ``parameters`` chunk and the AI-generated markers.

    Written here rather than by Pillow because encoding sits on every job's critical path and
    Pillow's adaptive filtering tries every filter on every row. A fixed Sub filter with zlib level 1
    does one pass on real images; data deflate cannot shrink by a fifth (noise, e.g. the tiny test
    models' output) is stored uncompressed rather than compressed for nothing.
    ``parameters`` is tEXt when Latin-1 and iTXt (UTF-8) otherwise, as A1111 writes it.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    width, height = rgb.size
    rows = np.asarray(rgb, dtype=np.uint8).reshape(height, width * 3)
    # Sub filter: each byte minus the same channel of the pixel to its left (mod 256).
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 1
    filtered[:, 1:4] = rows[:, :3]
    np.subtract(rows[:, 3:], rows[:, :-3], out=filtered[:, 4:])
    raw = filtered.tobytes()
    chunks = [
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
        _text_chunk("parameters", parameters),
        _text_chunk("Software", SOFTWARE),
        _text_chunk("AI-generated", "true"),
        _itxt_chunk("XML:com.adobe.xmp", xmp_packet(parameters).decode()),
        _chunk(b"IDAT", _deflate(raw)),
        _chunk(b"IEND", b""),
    ]
    return _PNG_SIGNATURE + b"".join(chunks)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SAMPLE_BYTES = 64 * 1024
_STORE_RATIO = 0.8


def _deflate(raw: bytes) -> bytes:
    """zlib at PNG_COMPRESS_LEVEL, or stored when a sample shows it would save under a fifth."""
    level = PNG_COMPRESS_LEVEL
    if level and len(raw) > 4 * _SAMPLE_BYTES:
        middle = len(raw) // 2
        sample = raw[middle : middle + _SAMPLE_BYTES]
        if len(zlib.compress(sample, level)) > _STORE_RATIO * len(sample):
            level = 0
    return zlib.compress(raw, level)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _text_chunk(keyword: str, text: str) -> bytes:
    try:
        return _chunk(b"tEXt", keyword.encode("latin-1") + b"\0" + text.encode("latin-1"))
    except UnicodeEncodeError:
        return _itxt_chunk(keyword, text)


def _itxt_chunk(keyword: str, text: str) -> bytes:
    # keyword, NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL.
    return _chunk(b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def read_parameters(data: bytes) -> str | None:
    """The parameters text of a PNG (chunk), WebP or JPEG (EXIF UserComment) made here; else None."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            text = image.info.get("parameters")
            if isinstance(text, str):
                return text
            comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    except (OSError, ValueError, SyntaxError):
        return None
    return _decode_user_comment(comment) if comment is not None else None


def decode_job_image(text: str) -> Image.Image:
    """A job's stored input image (base64 WebP/PNG, see GenerationRequest.init_image) as RGB."""
    data = base64.b64decode(text, validate=True)
    with Image.open(io.BytesIO(data), formats=("WEBP", "PNG")) as image:
        image.load()
        return image.convert("RGB")


def encode_job_image(image: Image.Image) -> str:
    """The inverse of decode_job_image: lossless WebP (fast setting), base64."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="WEBP", lossless=True, quality=25, method=0)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def make_grid(images: list[Image.Image]) -> Image.Image:
    """One image for a multi-image job: 2 images side by side, 3-4 in a 2x2 grid."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    if len(images) == 1:
        return images[0]
    if len(images) > 4:
        raise ValueError(f"make_grid takes at most 4 images, got {len(images)}")
    columns, rows = (2, 1) if len(images) == 2 else (2, 2)
    cell_w = max(im.width for im in images)
    cell_h = max(im.height for im in images)
    grid = Image.new("RGB", (cell_w * columns, cell_h * rows))
    for index, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((index % columns) * cell_w, (index // columns) * cell_h))
    return grid


def fit_to_limit(png_bytes: bytes, limit: int) -> tuple[bytes, str]:
    """Bring an image under ``limit`` bytes; returns (data, extension: "png", "webp" or "jpg").

    Tries, in order: the PNG as is, WebP at falling quality, JPEG at falling quality, then both
    again at 3/4 scale until the image would shrink below 64 px. WebP and JPEG keep the parameters
    as EXIF UserComment (what A1111 writes for those formats) and the AI-generated XMP.
    """
    if len(png_bytes) <= limit:
        return png_bytes, "png"
    with Image.open(io.BytesIO(png_bytes)) as original:
        original.load()
        parameters = original.info.get("parameters")
        image = original.convert("RGB")
    params = parameters if isinstance(parameters, str) else None
    smallest = len(png_bytes)
    scale = 1.0
    while True:
        for data, ext in _lossy_attempts(image, params):
            smallest = min(smallest, len(data))
            if len(data) <= limit:
                log.info(
                    "re-encoded %d-byte PNG as %s of %d bytes (scale %.2f)",
                    len(png_bytes),
                    ext,
                    len(data),
                    scale,
                )
                return data, ext
        scale *= 0.75
        size = (math.floor(image.width * 0.75), math.floor(image.height * 0.75))
        if min(size) < _MIN_SIDE:
            raise TooLarge(limit, smallest)
        image = image.resize(size, Image.Resampling.LANCZOS)


def _lossy_attempts(image: Image.Image, parameters: str | None):  # type: ignore[no-untyped-def]
    exif = _exif_with_parameters(parameters)
    xmp = xmp_packet(parameters or "")
    for quality in _WEBP_QUALITIES:
        yield _save(image, "WEBP", quality=quality, method=4, exif=exif, xmp=xmp), "webp"
    for quality in _JPEG_QUALITIES:
        yield _save(image, "JPEG", quality=quality, optimize=True, exif=exif, xmp=xmp), "jpg"


def _save(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _exif_with_parameters(parameters: str | None) -> bytes:
    exif = Image.Exif()
    exif[_SOFTWARE_TAG] = SOFTWARE
    if parameters:
        # EXIF UserComment: an 8-byte charset prefix, then UTF-16 (A1111 writes big-endian).
        exif.get_ifd(_EXIF_IFD)[_USER_COMMENT] = b"UNICODE\0" + parameters.encode("utf-16-be")
    return exif.tobytes()


def _decode_user_comment(comment: Any) -> str | None:
    if isinstance(comment, str):
        return comment
    if not isinstance(comment, bytes | bytearray):
        return None
    prefix, body = bytes(comment[:8]), bytes(comment[8:])
    if prefix == b"UNICODE\0":
        # Big-endian unless it starts with a little-endian BOM or looks little-endian.
        if body[:2] == b"\xff\xfe" or (len(body) > 1 and body[0] != 0 and body[1] == 0):
            return body.decode("utf-16-le", errors="replace").lstrip("\ufeff")
        return body.decode("utf-16-be", errors="replace")
    if prefix.startswith(b"ASCII"):
        return body.decode("ascii", errors="replace")
    return bytes(comment).decode("utf-8", errors="replace")
