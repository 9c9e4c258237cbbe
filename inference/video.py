"""Video files as members receive them: H.264 MP4 through imageio-ffmpeg, GIF when ffmpeg is missing.

No torch here: the bot imports this to fit a finished video under the upload limit it learns only
at delivery. imageio-ffmpeg ships its own ffmpeg binary, so MP4 needs no system package; without it
(or when that binary cannot run) videos are animated GIFs written by Pillow, bigger but playable
everywhere. Fitting lowers the bitrate first (the cheapest loss to the eye), then the size.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from inference.media import SOFTWARE, encode_png

log = logging.getLogger(__name__)

MP4, GIF = "video/mp4", "image/gif"
EXTENSIONS = {MP4: "mp4", GIF: "gif", "image/png": "png"}
# Below this many bits per pixel per frame H.264 turns to mush, so the frames shrink instead
# (1024x576 at 7 fps: 165 kb/s; the tiny test model's 128x64: 2.3 kb/s).
_MIN_BITS_PER_PIXEL = 0.04
_MIN_SIDE = 64
_HEADROOM = 0.92  # container overhead and rate-control overshoot


class VideoTooLarge(ValueError):
    def __init__(self, limit: int, smallest: int) -> None:
        super().__init__(f"Video cannot be made smaller than {limit} bytes (smallest attempt: {smallest} bytes)")
        self.limit = limit
        self.smallest = smallest


@functools.cache
def ffmpeg_exe() -> str | None:
    """The ffmpeg binary imageio-ffmpeg brings, or None (then videos are GIFs)."""
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        log.warning("imageio-ffmpeg unavailable (%s); videos will be GIFs", exc)
        return None


def sniff_mime(data: bytes) -> str:
    """What a stored output is, from its first bytes (MP4 ``ftyp`` box, GIF or PNG signature)."""
    if data[4:8] == b"ftyp":
        return MP4
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    return "image/png"


def encode_video(frames: list[Image.Image], fps: int, *, comment: str = "",
                 bitrate_kbps: int | None = None) -> tuple[bytes, str]:
    """Frames -> (bytes, mime): H.264 MP4 (yuv420p, faststart) or, without ffmpeg, a looping GIF.

    ``bitrate_kbps`` None means constant quality (CRF 20); the fitting code passes a bitrate.
    ``comment`` goes into the MP4's metadata (the generation parameters, as PNGs carry them).
    """
    if not frames:
        raise ValueError("encode_video needs at least one frame")
    if ffmpeg_exe() is None:
        return encode_gif(frames, fps), GIF
    return _encode_mp4(frames, fps, comment=comment, bitrate_kbps=bitrate_kbps), MP4


def _encode_mp4(frames: list[Image.Image], fps: int, *, comment: str, bitrate_kbps: int | None) -> bytes:
    import imageio_ffmpeg

    width, height = frames[0].size
    # yuv420p (what every browser and Discord's player decode) needs even sides.
    width, height = width - width % 2, height - height % 2
    rate = ["-crf", "20"] if bitrate_kbps is None else [
        "-b:v", f"{bitrate_kbps}k", "-maxrate", f"{bitrate_kbps}k", "-bufsize", f"{bitrate_kbps}k"]
    params = [*rate, "-preset", "medium", "-movflags", "+faststart", "-metadata", f"encoder={SOFTWARE}",
              "-metadata", f"comment={comment[:2000]}"]
    handle, path = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        writer = imageio_ffmpeg.write_frames(path, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                             macro_block_size=1, output_params=params, ffmpeg_log_level="error")
        writer.send(None)
        for frame in frames:
            rgb = frame.convert("RGB")
            if rgb.size != (width, height):
                rgb = rgb.crop((0, 0, width, height))
            writer.send(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))
        writer.close()
        with open(path, "rb") as file:
            return file.read()
    finally:
        os.unlink(path)


def encode_gif(frames: list[Image.Image], fps: int) -> bytes:
    """An animated GIF that loops, at ``fps`` (GIF stores 10 ms units: 7 fps plays at ~7.1)."""
    buffer = io.BytesIO()
    first, *rest = [frame.convert("RGB") for frame in frames]
    first.save(buffer, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0,
               optimize=False, comment=SOFTWARE.encode())
    return buffer.getvalue()


def decode_frames(data: bytes) -> tuple[list[Image.Image], float]:
    """(frames, fps) of an MP4 or GIF made here."""
    if sniff_mime(data) == GIF:
        with Image.open(io.BytesIO(data)) as gif:
            duration = gif.info.get("duration", 100) or 100
            frames = []
            for index in range(getattr(gif, "n_frames", 1)):
                gif.seek(index)
                frames.append(gif.convert("RGB"))
        return frames, 1000 / duration
    import imageio_ffmpeg

    handle, path = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        with open(path, "wb") as file:
            file.write(data)
        reader = imageio_ffmpeg.read_frames(path)
        meta: dict[str, Any] = next(reader)
        width, height = meta["size"]
        frames = [Image.frombytes("RGB", (width, height), raw) for raw in reader]
        return frames, float(meta["fps"])
    finally:
        os.unlink(path)


def sample_frames_png(data: bytes, count: int = 3) -> list[bytes]:
    """First, middle and last frames as PNGs: what image moderation scores for a video."""
    frames, _ = decode_frames(data)
    picks = sorted({round(i * (len(frames) - 1) / max(count - 1, 1)) for i in range(count)})
    return [encode_png(frames[i], "") for i in picks]


def fit_video(data: bytes, limit: int) -> tuple[bytes, str]:
    """Bring a video under ``limit`` bytes; returns (data, extension "mp4" or "gif").

    MP4: re-encode at the bitrate the limit allows for its duration (with headroom); when that
    bitrate would fall below 0.04 bits per pixel per frame, shrink the frames to 3/4 and try again. GIF: shrink only.
    Raises VideoTooLarge when the frames would fall below 64 px.
    """
    mime = sniff_mime(data)
    if len(data) <= limit:
        return data, EXTENSIONS[mime]
    frames, fps = decode_frames(data)
    smallest = len(data)
    for attempt in _smaller(frames):
        if mime == MP4 and ffmpeg_exe() is not None:
            seconds = len(attempt) / fps
            kbps = math.floor(limit * 8 * _HEADROOM / seconds / 1000)
            width, height = attempt[0].size
            floor = max(1, math.ceil(width * height * fps * _MIN_BITS_PER_PIXEL / 1000))
            for rate in (kbps, kbps * 3 // 4, kbps // 2):
                if rate < floor:
                    break
                encoded, _ = encode_video(attempt, round(fps), bitrate_kbps=rate)
                smallest = min(smallest, len(encoded))
                if len(encoded) <= limit:
                    log.info("re-encoded %d-byte video at %d kb/s, %dx%d: %d bytes", len(data), rate,
                             *attempt[0].size, len(encoded))
                    return encoded, "mp4"
        else:
            encoded = encode_gif(attempt, round(fps))
            smallest = min(smallest, len(encoded))
            if len(encoded) <= limit:
                return encoded, "gif"
    raise VideoTooLarge(limit, smallest)


def _smaller(frames: list[Image.Image]) -> Iterator[list[Image.Image]]:
    """The frames as they are, then at 3/4 scale again and again (even sides), down to 64 px."""
    current = frames
    while min(current[0].size) >= _MIN_SIDE:
        yield current
        width, height = (math.floor(side * 0.75) // 2 * 2 for side in current[0].size)
        if min(width, height) < _MIN_SIDE:
            return
        current = [frame.resize((width, height), Image.Resampling.LANCZOS) for frame in current]
