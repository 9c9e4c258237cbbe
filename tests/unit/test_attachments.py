"""bot.params.attachments: every kind of bad file gets its own message; good files become upright RGB."""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from bot.errors import InvalidOption
from bot.params import attachments
from tests.e2e.helpers import png_bytes as _png


def _save(image: Image.Image, fmt: str, **options) -> bytes:  # type: ignore[no-untyped-def]
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """A PNG whose header claims another size (CRC fixed), as a decompression bomb's would."""
    start = 8
    length = struct.unpack(">I", png[start:start + 4])[0]
    body = bytearray(png[start + 8:start + 8 + length])
    body[0:8] = struct.pack(">II", width, height)
    chunk = struct.pack(">I", length) + b"IHDR" + bytes(body) + struct.pack(">I", zlib.crc32(b"IHDR" + bytes(body)))
    return png[:start] + chunk + png[start + 12 + length:]


def _message(data: bytes, **kwargs) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidOption) as caught:
        attachments.decode(data, filename="in.png", **kwargs)
    return caught.value.message


def test_non_image_is_refused_with_the_formats_we_read() -> None:
    text = _message(b"%PDF-1.7 definitely not pixels" * 10)
    assert "not an image Atelier can read" in text and "PNG, JPEG, WebP" in text


def test_a_valid_image_in_a_format_we_do_not_accept_is_refused() -> None:
    tiff = _save(Image.new("RGB", (8, 8)), "TIFF")
    assert "not an image Atelier can read" in _message(tiff)


def test_empty_file() -> None:
    assert "is empty" in _message(b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt: str) -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = _save(noise, fmt)
    assert "truncated or damaged" in _message(data[: len(data) // 2])


def test_header_claiming_too_many_pixels_is_refused_before_decoding() -> None:
    bomb = _with_ihdr_size(_png(Image.new("L", (8, 8))), 5000, 5000)
    text = _message(bomb)
    assert "5000×5000 pixels (25.0 MP)" in text and "16.8 MP" in text


def test_pillow_decompression_bomb_error_is_reported_the_same_way() -> None:
    # 20000x20000 = 400 MP is past twice Pillow's MAX_IMAGE_PIXELS: Pillow itself raises on open.
    bomb = _with_ihdr_size(_png(Image.new("L", (8, 8))), 20000, 20000)
    text = _message(bomb, max_pixels=10**12)
    assert "too many pixels" in text and "Resize it" in text


def test_real_compressed_bomb_is_refused() -> None:
    # 6000x6000 of zeros deflates to a few dozen KB but would be 36 MP once decoded.
    data = _png(Image.new("1", (6000, 6000)))
    assert len(data) < 100_000
    assert "6000×6000" in _message(data)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    decoded = attachments.decode(_save(image, "JPEG", exif=exif, quality=95), filename="phone.jpg")
    assert decoded.size == (20, 40)
    top, bottom = decoded.image.getpixel((10, 5)), decoded.image.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60, top  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_cmyk_becomes_rgb() -> None:
    image = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK
    decoded = attachments.decode(_save(image, "JPEG", quality=100), filename="print.jpg")
    assert decoded.image.mode == "RGB" and decoded.original_format == "JPEG"
    r, g, b = decoded.image.getpixel((8, 8))
    assert r > 240 and g < 20 and b < 20


def test_palette_with_transparency_goes_onto_white() -> None:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (0, 0, 4, 8))
    decoded = attachments.decode(_save(image, "PNG", transparency=0))
    assert decoded.image.getpixel((0, 0)) == (255, 0, 0)
    assert decoded.image.getpixel((7, 0)) == (255, 255, 255)  # transparent black shows as white


def test_palette_without_transparency_keeps_colours() -> None:
    image = Image.new("P", (4, 4), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    assert attachments.decode(_save(image, "GIF")).image.getpixel((1, 1)) == (10, 200, 30)


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    values = np.array([[0, 32896, 65535, 1000]], dtype=np.uint16)
    data = _png(Image.fromarray(values))
    decoded = attachments.decode(data).image
    assert [decoded.getpixel((x, 0)) for x in range(4)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255),
                                                           (4, 4, 4)]


def test_alpha_is_composited_onto_white() -> None:
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (0, 0))
    la.putpixel((1, 0), (0, 255))
    decoded = attachments.decode(_png(la)).image
    assert decoded.getpixel((0, 0)) == (255, 255, 255) and decoded.getpixel((1, 0)) == (0, 0, 0)
    rgba = attachments.decode(_png(Image.new("RGBA", (2, 2), (255, 0, 0, 128)))).image
    assert rgba.getpixel((0, 0)) == (255, 127, 127)


def test_animated_gif_uses_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert attachments.decode(buffer.getvalue()).image.getpixel((4, 4)) == (255, 0, 0)


def test_encode_for_job_is_lossless() -> None:
    import base64

    noise = Image.fromarray(np.random.default_rng(2).integers(0, 255, (24, 32, 3), dtype=np.uint8))
    text = attachments.encode_for_job(noise)
    back = Image.open(io.BytesIO(base64.b64decode(text)))
    assert np.array_equal(np.asarray(back.convert("RGB")), np.asarray(noise))


@dataclass
class _Att:
    filename: str
    size: int
    url: str


async def test_reported_size_over_the_cap_is_refused_without_downloading() -> None:
    class Exploding:
        def get(self, url):  # type: ignore[no-untyped-def]
            raise AssertionError("must not download")

    with pytest.raises(InvalidOption, match=r"is 30\.0 MiB; images can be at most 20\.0 MiB"):
        await attachments.download(_Att("big.png", 30 * 2**20, "https://cdn.example/big.png"),
                                   session=Exploding())  # type: ignore[arg-type]


async def _serve(body: bytes, *, chunked: bool):  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, content_type="image/png")
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(body), 4096):
            await response.write(body[i:i + 4096])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/f.png", handler)
    server = TestServer(app)
    await server.start_server()
    return server


def _trust(monkeypatch: pytest.MonkeyPatch, server) -> None:  # type: ignore[no-untyped-def]
    """Let downloads reach the local test server as if it were Discord's CDN."""
    origin = str(server.make_url("/")).rstrip("/")
    monkeypatch.setattr(attachments, "CDN_ORIGINS", attachments.CDN_ORIGINS | {origin})


async def test_stream_is_cut_at_the_cap_when_the_reported_size_lies(monkeypatch: pytest.MonkeyPatch) -> None:
    server = await _serve(b"\0" * 50_000, chunked=True)
    _trust(monkeypatch, server)
    try:
        with pytest.raises(InvalidOption, match="larger than"):
            await attachments.download(_Att("f.png", 10, str(server.make_url("/f.png"))), max_bytes=20_000)
    finally:
        await server.close()


async def test_load_downloads_and_decodes(monkeypatch: pytest.MonkeyPatch) -> None:
    server = await _serve(_png(Image.new("RGB", (12, 10), (1, 2, 3))), chunked=False)
    _trust(monkeypatch, server)
    try:
        loaded = await attachments.load(_Att("f.png", 100, str(server.make_url("/f.png"))))
        assert loaded.size == (12, 10) and loaded.image.getpixel((0, 0)) == (1, 2, 3)
        with pytest.raises(InvalidOption, match="could not be downloaded"):
            await attachments.load(_Att("f.png", 100, str(server.make_url("/missing.png"))))
    finally:
        await server.close()
