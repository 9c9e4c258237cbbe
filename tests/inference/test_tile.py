"""Seamless tiles on the tiny models: circular padding for the job only, restored after it."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline
from PIL import Image

from inference import tiling
from inference.engine import Engine
from inference.media import read_parameters
from inference.testing.seams import interior_difference, seam_difference
from inference.types import GenerationRequest, JobCancelled


def _request(model: str, **changes: object) -> GenerationRequest:
    request = GenerationRequest(job_id=4, model=model, prompt="moss on stones", width=128, height=128, steps=4, seed=11)
    return replace(request, **changes)  # type: ignore[arg-type]


def _image(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
def test_a_tile_wraps_where_a_plain_image_does_not(engine: Engine, model: str) -> None:
    tile = engine.run(_request(model, tile=True)).images[0]
    plain = engine.run(_request(model)).images[0]
    tiled, untiled = _image(tile.png), _image(plain.png)
    assert seam_difference(tiled) < seam_difference(untiled) / 3
    assert seam_difference(tiled) < interior_difference(tiled) + 0.15  # the wrap is as smooth as the middle
    assert "Tiling: True" in read_parameters(tile.png)
    assert "Tiling" not in read_parameters(plain.png)


def test_the_next_job_equals_a_never_tiled_run_even_after_a_cancel(engine: Engine) -> None:
    before = engine.run(_request("tiny-sd15")).images[0].png
    engine.run(_request("tiny-sd15", tile=True))
    steps: list[int] = []
    with pytest.raises(JobCancelled):
        engine.run(_request("tiny-sd15", tile=True, steps=6), on_step=lambda s, t: steps.append(s),
                   is_cancelled=lambda: len(steps) >= 2)
    assert engine.run(_request("tiny-sd15")).images[0].png == before
    pipe = engine.pipeline("tiny-sd15")
    assert {conv.padding_mode for conv in tiling.padded_convolutions(pipe)} == {"zeros"}


def test_padding_is_restored_after_an_error_and_the_pipeline_is_shift_equivariant(engine: Engine) -> None:
    pipe = engine.pipeline("tiny-sd15")
    convolutions = tiling.padded_convolutions(pipe)
    assert len(convolutions) > 10
    with pytest.raises(RuntimeError, match="boom"), tiling.seamless(pipe):
        assert {conv.padding_mode for conv in convolutions} == {"circular"}
        raise RuntimeError("boom")
    assert {conv.padding_mode for conv in convolutions} == {"zeros"}
    # On a torus, noise shifted by two latent cells (the tiny UNet downsamples once) draws the same
    # image shifted by 16 px: the edges are ordinary neighbours.
    noise = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    shifted = torch.roll(noise, 2, dims=3)

    # A deterministic sampler on a pipeline sharing the modules (ancestral noise would not shift along).
    ddim = StableDiffusionPipeline.from_pipe(pipe, scheduler=DDIMScheduler.from_config(pipe.scheduler.config))
    ddim.set_progress_bar_config(disable=True)

    def draw(latents: torch.Tensor) -> torch.Tensor:
        out = ddim(prompt="moss", latents=latents.clone(), num_inference_steps=2, guidance_scale=1.0,
                   output_type="pt", width=128, height=128)
        return out.images[0]

    with tiling.seamless(pipe):
        a, b = draw(noise), draw(shifted)
    assert torch.allclose(torch.roll(a, 16, dims=2), b, atol=1e-3)
    assert not torch.allclose(torch.roll(draw(noise), 16, dims=2), draw(shifted), atol=1e-2)


def test_a_canvas_edit_of_a_tile_stays_a_tile(engine: Engine) -> None:
    from inference.canvas import encode_mask
    from inference.media import encode_job_image

    source = _image(engine.run(_request("tiny-sd15", tile=True)).images[0].png)
    mask = Image.new("L", source.size, 0)
    mask.paste(255, (32, 32, 96, 96))
    edit = engine.run(_request("tiny-sd15", task="inpaint", init_image=encode_job_image(source),
                               mask_image=encode_mask(mask), strength=1.0, tile=True)).images[0]
    assert "Tiling: True" in read_parameters(edit.png) and "Mask blur: 8" in read_parameters(edit.png)
    assert seam_difference(_image(edit.png)) == pytest.approx(seam_difference(source))  # the edges were kept
