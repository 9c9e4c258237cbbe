"""Tiny random-weight models, so every pipeline kind runs on a CPU in seconds with no downloads.

The hub is unreachable in CI and no package ships Stable Diffusion weights, so tests and
``atelier models make-tiny`` build miniature components in code (inference/testing/components.py),
``save_pretrained`` them, and let the engine load them back through the same
``from_pretrained(folder)`` path real models take. Weights are seeded: two calls write identical files.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import diffusers
import torch
import transformers
from diffusers import EulerAncestralDiscreteScheduler, EulerDiscreteScheduler

from inference.testing import components

log = logging.getLogger(__name__)


def make_tiny(dest: Path) -> Path:
    """Write tiny diffusers folders for every kind the engine serves, plus ``dest/models.toml``.

    Returns the path of the TOML, ready for ``ATELIER_MODELS``.
    """
    # save_pretrained shows a bar per shard; a tool that writes eleven of them should not.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = components.tokenizer(Path(tmp))

    # SD 1.5 kind: native 512x512 (64x64 latents), DDIM-style schedule config like the real repo.
    components.sd15(components.SEED, tokenizer).save_pretrained(dest / "tiny-sd15", safe_serialization=True)
    # SDXL kinds: native 256x256 keeps CPU runs fast; the architecture path is the real SDXL one.
    sdxl = components.sdxl(components.SEED + 1, tokenizer, EulerDiscreteScheduler(**components.SCHEDULE, timestep_spacing="leading"))
    sdxl.save_pretrained(dest / "tiny-sdxl", safe_serialization=True)
    # Lightning ships only a distilled UNet file that replaces the SDXL base UNet; mirror that.
    lightning = dest / "tiny-sdxl-lightning"
    lightning.mkdir(exist_ok=True)
    torch.manual_seed(components.SEED + 2)
    components.sdxl_unet().save_pretrained(lightning / "unet", safe_serialization=True)
    (lightning / "unet" / "diffusion_pytorch_model.safetensors").replace(lightning / "unet.safetensors")
    for leftover in (lightning / "unet").iterdir():
        leftover.unlink()
    (lightning / "unet").rmdir()
    # Turbo is a full repo of its own whose scheduler is Euler ancestral with trailing timesteps.
    turbo_scheduler = EulerAncestralDiscreteScheduler(**components.SCHEDULE, timestep_spacing="trailing")
    components.sdxl(components.SEED + 3, tokenizer, turbo_scheduler).save_pretrained(
        dest / "tiny-sdxl-turbo", safe_serialization=True
    )

    # Stable Video Diffusion: image in, frames out (x8 temporal VAE, 224 px CLIP image encoder).
    components.svd(components.SEED + 5).save_pretrained(dest / "tiny-svd", safe_serialization=True)

    # A Real-ESRGAN-architecture upscaler (RRDBNet, x4) with 8 features and one block.
    write_tiny_esrgan(dest / "tiny-esrgan" / "tiny-esrgan-x4.safetensors", components.SEED + 4)

    # OpenPose ControlNets for /pose: copies of each base UNet's encoder (ControlNetModel.from_unet),
    # as the real ones were initialised, saved as the standalone folders the hub ships.
    torch.manual_seed(components.SEED + 6)
    components.controlnet(components.sd15_unet()).save_pretrained(dest / "tiny-controlnet-sd15", safe_serialization=True)
    torch.manual_seed(components.SEED + 7)
    components.controlnet(components.sdxl_unet()).save_pretrained(dest / "tiny-controlnet-sdxl", safe_serialization=True)
    # The Stable Diffusion x4 upscaler (also DeepFloyd IF's stage III).
    components.sd_x4(components.SEED + 8, tokenizer).save_pretrained(dest / "tiny-sd-x4", safe_serialization=True)
    # SD 2.x: the SD pipeline with a linear-projection UNet and a v-prediction schedule.
    components.sd2(components.SEED + 9, tokenizer).save_pretrained(dest / "tiny-sd2", safe_serialization=True)
    # SD 3: MMDiT, two CLIP encoders with projections and a T5 encoder, flow matching.
    components.sd3(components.SEED + 10, tokenizer).save_pretrained(dest / "tiny-sd3", safe_serialization=True)
    # DeepFloyd IF: pixel-space stage I (T5-conditioned) and the stage II super-resolution UNet.
    stage_1, stage_2 = components.deepfloyd(components.SEED + 11)
    stage_1.save_pretrained(dest / "tiny-if" / "stage-1", safe_serialization=True)
    stage_2.save_pretrained(dest / "tiny-if" / "stage-2", safe_serialization=True)

    # Dedicated inpainting models (9-channel UNets) for canvas edits; tiny-sdxl names its one, tiny-sd15
    # does not (its edits run the base weights through the inpaint pipeline), so both paths are covered.
    components.sd15_inpaint(components.SEED + 12, tokenizer).save_pretrained(
        dest / "tiny-sd15-inpaint", safe_serialization=True)
    components.sdxl_inpaint(components.SEED + 13, tokenizer,
                            EulerDiscreteScheduler(**components.SCHEDULE, timestep_spacing="leading")).save_pretrained(
        dest / "tiny-sdxl-inpaint", safe_serialization=True)
    # /describe's captioner and tagger, /blend's IP-Adapters (inference/testing/vision.py).
    from inference.testing import vision

    toml_path = dest / "models.toml"
    toml_path.write_text(_TOML + vision.write_all(dest, components.SEED + 20), encoding="utf-8")
    log.info("wrote tiny models to %s", dest)
    return toml_path


_TOML = """\
# Tiny random-weight models written by inference.testing.make_tiny: they draw noise, fast, on a CPU.
default = "tiny-sd15"
# Only these models (not the packaged ones with real hub ids).
packaged = false

[models.tiny-sd15]
kind = "sd15"
source = "tiny-sd15"
description = "Tiny SD 1.5 (random weights, for tests)"
steps = 4
guidance = 7.0
scheduler = "euler-a"
width = 512
height = 512
max_steps = 50
max_count = 4

[models.tiny-sdxl]
kind = "sdxl"
source = "tiny-sdxl"
description = "Tiny SDXL (random weights, for tests)"
fast = "tiny-sdxl-lightning"
inpaint = "tiny-sdxl-inpaint"
steps = 4
guidance = 6.0
scheduler = "dpmpp-2m-karras"
width = 256
height = 256
max_steps = 50
max_count = 4

[models.tiny-sdxl-lightning]
kind = "sdxl-lightning"
source = "tiny-sdxl"
unet_repo = "tiny-sdxl-lightning"
unet_file = "unet.safetensors"
description = "Tiny SDXL-Lightning (random weights, for tests)"
steps = 4
guidance = 0.0
scheduler = "euler-trailing"
width = 256
height = 256
max_steps = 8
max_count = 4

[models.tiny-sdxl-turbo]
kind = "sdxl-turbo"
source = "tiny-sdxl-turbo"
description = "Tiny SDXL-Turbo (random weights, for tests)"
steps = 1
guidance = 0.0
scheduler = "euler-a-trailing"
width = 256
height = 256
max_steps = 4
max_count = 4

# Shares the tiny SDXL folder, as Animagine XL shares the SDXL architecture.
[models.tiny-animagine]
kind = "sdxl"
source = "tiny-sdxl"
style = "anime"
description = "Tiny Animagine-style SDXL (random weights, for tests)"
steps = 4
guidance = 7.0
scheduler = "euler-a"
width = 256
height = 256
max_steps = 50
max_count = 4

# Trained (randomly) at 4 frames; the registry allows up to 8 so tests can ask for other counts.
[models.tiny-svd]
kind = "svd"
source = "tiny-svd"
description = "Tiny Stable Video Diffusion (random weights, for tests)"
steps = 2
guidance = 3.0
width = 256
height = 128
max_steps = 10
frames = 4
max_frames = 8
fps = 7
decode_chunk_size = 2

[models.tiny-esrgan]
kind = "esrgan"
source = "tiny-esrgan/tiny-esrgan-x4.safetensors"
description = "Tiny Real-ESRGAN-architecture x4 upscaler (random weights, for tests)"
tile = 96

# OpenPose ControlNets drawing with the tiny SD 1.5 and SDXL pipelines (/pose).
[models.tiny-sd15-openpose]
kind = "controlnet"
source = "tiny-controlnet-sd15"
base = "tiny-sd15"
description = "Tiny SD 1.5 OpenPose ControlNet (random weights, for tests)"

[models.tiny-sdxl-openpose]
kind = "controlnet"
source = "tiny-controlnet-sdxl"
base = "tiny-sdxl"
description = "Tiny SDXL OpenPose ControlNet (random weights, for tests)"

[models.tiny-sd-x4]
kind = "sd-x4"
source = "tiny-sd-x4"
description = "Tiny Stable Diffusion x4 upscaler (random weights, for tests)"
steps = 2
guidance = 9.0
max_input = 16384

[models.tiny-sd2]
kind = "sd2"
source = "tiny-sd2"
description = "Tiny SD 2.x, v-prediction (random weights, for tests)"
steps = 2
guidance = 7.0
scheduler = "euler"
width = 256
height = 256
max_steps = 50
max_count = 4

[models.tiny-sd3]
kind = "sd3"
source = "tiny-sd3"
description = "Tiny SD 3 (random weights, for tests)"
steps = 2
guidance = 7.0
width = 128
height = 128
max_steps = 50
max_count = 4

# Stage I at 32 px, stage II x4 to 128 px, then the tiny x4 upscaler to 512 px.
[models.tiny-if]
kind = "deepfloyd-if"
source = "tiny-if/stage-1"
stage_2 = "tiny-if/stage-2"
stage_3 = "tiny-sd-x4"
description = "Tiny DeepFloyd IF, three stages (random weights, for tests)"
steps = 2
guidance = 7.0
width = 512
height = 512
max_steps = 50
max_count = 2

# Dedicated inpainting models (9-channel UNets): canvas edits only, never text to image. tiny-sdxl
# names its one (`inpaint = "tiny-sdxl-inpaint"`); tiny-sd15 and tiny-animagine inpaint with their own
# weights; jobs may also name these entries directly.
[models.tiny-sd15-inpaint]
kind = "sd15-inpaint"
source = "tiny-sd15-inpaint"
description = "Tiny SD 1.5 inpainting (random weights, for tests)"
steps = 4
guidance = 7.0
scheduler = "euler-a"
width = 512
height = 512
max_steps = 50
max_count = 4

[models.tiny-sdxl-inpaint]
kind = "sdxl-inpaint"
source = "tiny-sdxl-inpaint"
description = "Tiny SDXL inpainting (random weights, for tests)"
steps = 4
guidance = 6.0
scheduler = "dpmpp-2m-karras"
width = 256
height = 256
max_steps = 50
max_count = 4
"""


def write_tiny_esrgan(path: Path, seed: int, *, scale: int = 4) -> Path:
    """A random-weight RRDBNet file with Real-ESRGAN's key names (.safetensors, or .pth by suffix,
    stored under ``params_ema`` as Real-ESRGAN's releases are)."""
    import safetensors.torch

    from inference.runners.upscale import RRDBNet

    torch.manual_seed(seed)
    model = RRDBNet(scale=scale, num_feat=8, num_block=1, num_grow_ch=4)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pth":
        torch.save({"params_ema": state}, str(path))
    else:
        safetensors.torch.save_file(state, str(path))
    return path
