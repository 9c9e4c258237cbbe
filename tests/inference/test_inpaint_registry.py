"""How dedicated inpainting models are registered: their kinds, the `inpaint` link of a base entry,
single-file checkpoints with 9-channel UNets, and what `atelier models pull` fetches for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.cli.pull import with_dependencies
from inference import checkpoints, hub
from inference.canvas import encode_mask
from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import INPAINT_KINDS, TEXT_TO_IMAGE_KINDS, ModelRegistry, RegistryError
from inference.types import GenerationRequest
from tests.single_file import write_checkpoint


def test_packaged_bases_link_the_real_inpainting_checkpoints() -> None:
    registry = ModelRegistry.load(None)
    sd15, sdxl = registry.get("sd15"), registry.get("sdxl")
    assert registry.get(sd15.inpaint or "").source == "stable-diffusion-v1-5/stable-diffusion-inpainting"
    assert registry.get(sdxl.inpaint or "").source == "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    assert {registry.get(name).kind for name in (sd15.inpaint, sdxl.inpaint)} == set(INPAINT_KINDS)
    assert not set(INPAINT_KINDS) & set(TEXT_TO_IMAGE_KINDS)
    # /imagine's model list is the text-to-image kinds: the inpainting entries are not in it.
    assert "sd15-inpainting" not in [s.name for s in registry.specs() if s.kind in TEXT_TO_IMAGE_KINDS]
    assert registry.get("sdxl-inpainting").extra["variant"] == "fp16"
    # Their downloads skip the safety checker, like SD 1.5's, and `pull sd15` fetches the inpainting model too.
    assert hub.skipped_weights(registry.get("sd15-inpainting")) == ("safety_checker",)
    assert [s.name for s in with_dependencies(registry, ["sd15"])] == ["sd15", "sd15-inpainting"]


@pytest.mark.parametrize(("table", "message"), [
    ('[models.a]\nkind = "sd15"\nsource = "x/y"\ninpaint = "nope"\n', "'nope' is not a model"),
    ('[models.a]\nkind = "sd15"\nsource = "x/y"\ninpaint = "b"\n[models.b]\nkind = "sdxl-inpaint"\nsource = "x/z"\n',
     "needs a sd15-inpaint one"),
    ('[models.a]\nkind = "sdxl"\nsource = "x/y"\ninpaint = "b"\n[models.b]\nkind = "sdxl"\nsource = "x/z"\n',
     "is a sdxl model"),
    ('[models.a]\nkind = "sd3"\nsource = "x/y"\ninpaint = "b"\n[models.b]\nkind = "sdxl-inpaint"\nsource = "x/z"\n',
     "only SD 1.5 and SDXL entries"),
    ('[models.b]\nkind = "sdxl-inpaint"\nsource = "x/z"\nmax_strength = 1.5\n', "max_strength must be 0.05-1"),
    ('[models.b]\nkind = "sdxl-inpaint"\nsource = "x/z"\nmax_strength = "high"\n', "max_strength must be"),
])
def test_bad_inpaint_links_are_refused_at_load(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "models.toml"
    path.write_text("packaged = false\n" + table)
    with pytest.raises(RegistryError, match=message):
        ModelRegistry.load(path)


def test_a_nine_channel_single_file_checkpoint_is_an_inpainting_model_that_runs(
        tiny_models: Path, tmp_path: Path) -> None:
    folder = tiny_models.parent / "tiny-sd15-inpaint"
    file = write_checkpoint(folder, tmp_path / "my-inpainting.safetensors")
    assert checkpoints.detect(file) == "sd15-inpaint"
    toml = tmp_path / "models.toml"
    toml.write_text(f'packaged = false\n[single_file]\nsd15-inpaint = "{folder}"\n'
                    f'[models.mine]\nsource = "{file}"\nsteps = 3\nscheduler = "euler"\n'
                    f'[models.base]\nkind = "sd15"\nsource = "{tiny_models.parent / "tiny-sd15"}"\ninpaint = "mine"\n')
    registry = ModelRegistry.load(toml)
    assert registry.get("mine").kind == "sd15-inpaint" and registry.get("mine").single_file
    engine = Engine(registry, "cpu")
    canvas = Image.fromarray((np.random.default_rng(1).random((64, 96, 3)) * 255).astype(np.uint8))
    mask = Image.new("L", (96, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    result = engine.run(GenerationRequest(job_id=1, model="base", prompt="a bridge", width=96, height=64, steps=3,
                                          task="inpaint", init_image=encode_job_image(canvas),
                                          mask_image=encode_mask(mask), strength=1.0, mask_blur=4))
    params = read_parameters(result.images[0].png)
    assert "Model: mine," in params and "Model hash: " in params
    assert engine.cache.get(registry.get("mine"), "cpu").unet.config.in_channels == 9
