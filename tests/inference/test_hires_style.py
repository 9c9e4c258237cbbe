"""Hires fix with an image prompt (/imagine style_ref): the IP-Adapter embeds reach both passes."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest
from PIL import Image

from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.runners import hires
from inference.types import GenerationRequest


def _reference() -> str:
    image = Image.new("RGB", (48, 40), (220, 20, 20))
    for x in range(0, 48, 6):  # some structure, so the encoder sees more than a flat colour
        image.putpixel((x, x % 40), (35, 30, 200))
    return encode_job_image(image)


def _pixels(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("RGB").tobytes()


@pytest.mark.parametrize(("model", "upscaler"), [("tiny-sd15", "latent"), ("tiny-sdxl", "")])
def test_hires_fix_keeps_the_style_reference_in_both_passes(engine: Engine, monkeypatch: pytest.MonkeyPatch,
                                                            model: str, upscaler: str) -> None:
    passes: list[bool] = []
    real = hires.calls

    def spy(*args: Any, **kwargs: Any) -> Any:
        passes.append(bool(kwargs.get("ip_adapter_image_embeds")))
        return real(*args, **kwargs)

    monkeypatch.setattr(hires, "calls", spy)
    job = GenerationRequest(job_id=4, model=model, prompt="a house", width=64, height=64, steps=2, seed=3,
                            scheduler="euler", hires=2.0, hires_upscaler=upscaler, ip_images=[_reference()],
                            ip_weights=[1.0], ip_mode="style", ip_scale=1.0)
    styled = engine.run(job)
    assert passes == [True, True]  # the first pass and the second (image to image at the final size)
    assert (styled.images[0].width, styled.images[0].height) == (128, 128)
    text = read_parameters(styled.images[0].png)
    assert "Hires upscale: 2" in text and "Style reference: tiny-ip-adapter-" in text
    plain = engine.run(replace(job, ip_images=[], ip_weights=[], ip_mode=""))
    assert passes[2:] == [False, False] and "Style reference" not in read_parameters(plain.images[0].png)
    assert _pixels(styled.images[0].png) != _pixels(plain.images[0].png)
