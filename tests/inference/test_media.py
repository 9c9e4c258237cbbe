"""PNG metadata, grids and re-encoding to fit Discord's upload limit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from inference.media import (
    DIGITAL_SOURCE_TYPE,
    TooLarge,
    a1111_parameters,
    encode_png,
    fit_to_limit,
    make_grid,
    read_parameters,
)

PARAMS = a1111_parameters("a lighthouse at dusk", "blurry", 20, "Euler a", 7.0, 7, 512, 512, "tiny-sd15")


def noise(size: int = 256, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def smooth(size: int = 256) -> Image.Image:
    x = np.linspace(0, 255, size)
    return Image.fromarray(np.stack([np.add.outer(x, x) / 2] * 3, -1).astype(np.uint8))


def test_a1111_layout() -> None:
    assert PARAMS == (
        "a lighthouse at dusk\n"
        "Negative prompt: blurry\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 7, Size: 512x512, Model: tiny-sd15"
    )
    no_negative = a1111_parameters("p", "", 4, "Euler", 0, 1, 64, 64, "m", {"Schedule type": "SGM Uniform"})
    assert (
        no_negative
        == "p\nSteps: 4, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 0, Seed: 1, Size: 64x64, Model: m"
    )
    assert 'Lora: "a, b"' in a1111_parameters("p", "", 4, "Euler", 0, 1, 64, 64, "m", {"Lora": "a, b"})


@pytest.mark.parametrize("image", [noise(), smooth(), noise().convert("L")], ids=["noise", "smooth", "grey"])
def test_png_round_trips_pixels_and_metadata(image: Image.Image) -> None:
    data = encode_png(image, PARAMS)
    with Image.open(io.BytesIO(data)) as back:
        back.load()
        assert back.format == "PNG"
        assert np.array_equal(np.asarray(back), np.asarray(image.convert("RGB")))
        assert back.info["parameters"] == PARAMS
        assert back.info["Software"] == "Atelier"
        assert back.info["AI-generated"] == "true"
        assert DIGITAL_SOURCE_TYPE in back.info["XML:com.adobe.xmp"]
        assert "<Iptc4xmpExt:DigitalSourceType>" in back.info["XML:com.adobe.xmp"]
    assert read_parameters(data) == PARAMS


def test_non_latin_prompts_survive() -> None:
    text = a1111_parameters("灯台 🌅 <b>", "", 4, "Euler", 7, 7, 64, 64, "m")
    assert read_parameters(encode_png(noise(64), text)) == text


def test_read_parameters_of_other_data_is_none() -> None:
    buffer = io.BytesIO()
    noise(64).save(buffer, format="PNG")
    assert read_parameters(buffer.getvalue()) is None
    assert read_parameters(b"not an image") is None


@pytest.mark.parametrize(("count", "size"), [(1, (64, 48)), (2, (128, 48)), (3, (128, 96)), (4, (128, 96))])
def test_grid_shapes(count: int, size: tuple[int, int]) -> None:
    images = [noise(64, seed).resize((64, 48)) for seed in range(count)]
    grid = make_grid(images)
    assert grid.size == size
    if count > 1:
        assert np.array_equal(
            np.asarray(grid)[48:96, 0:64] if count > 2 else np.asarray(grid)[:, 64:],
            np.asarray(images[2 if count > 2 else 1]),
        )


def test_fit_to_limit_keeps_a_small_file() -> None:
    data = encode_png(smooth(), PARAMS)
    assert fit_to_limit(data, len(data)) == (data, "png")


def test_fit_to_limit_reencodes_and_keeps_parameters() -> None:
    data = encode_png(noise(512), PARAMS)
    assert len(data) > 700_000
    for limit in (300_000, 60_000, 15_000):
        out, ext = fit_to_limit(data, limit)
        assert len(out) <= limit
        assert ext in ("webp", "jpg")
        with Image.open(io.BytesIO(out)) as image:
            assert image.format == {"webp": "WEBP", "jpg": "JPEG"}[ext]
        assert read_parameters(out) == PARAMS


def test_fit_to_limit_gives_up_plainly() -> None:
    with pytest.raises(TooLarge, match="smaller than 100 bytes"):
        fit_to_limit(encode_png(noise(512), PARAMS), 100)
