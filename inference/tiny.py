"""Tiny random-weight models, so every pipeline kind runs on a CPU in seconds with no downloads.

The hub is unreachable in CI and no package ships Stable Diffusion weights, so tests and
``atelier models make-tiny`` build miniature components in code, ``save_pretrained`` them, and let
the engine load them back through the same ``from_pretrained(folder)`` path real models take. The
configs follow ``shared/notes/tiny-models.md``: a byte-level tokenizer (514 entries), a 2-layer CLIP
text encoder, a two-block UNet and a four-block VAE with the production x8 geometry, so a 512x512
request really decodes 64x64 latents. Weights are seeded: two calls write identical files.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import diffusers
import torch
import transformers
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    DDIMScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    StableVideoDiffusionPipeline,
    UNet2DConditionModel,
    UNetSpatioTemporalConditionModel,
)
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

log = logging.getLogger(__name__)

SEED = 20240601
_VOCAB_SIZE = 514
_BOS, _EOS = 512, 513

# The noise schedule SD 1.5 and SDXL were trained with; the tiny models share it so schedulers
# behave as they do on real weights.
_SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}


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
        tokenizer = _tokenizer(Path(tmp))

    # SD 1.5 kind: native 512x512 (64x64 latents), DDIM-style schedule config like the real repo.
    _sd15(SEED, tokenizer).save_pretrained(dest / "tiny-sd15", safe_serialization=True)
    # SDXL kinds: native 256x256 keeps CPU runs fast; the architecture path is the real SDXL one.
    sdxl = _sdxl(SEED + 1, tokenizer, EulerDiscreteScheduler(**_SCHEDULE, timestep_spacing="leading"))
    sdxl.save_pretrained(dest / "tiny-sdxl", safe_serialization=True)
    # Lightning ships only a distilled UNet file that replaces the SDXL base UNet; mirror that.
    lightning = dest / "tiny-sdxl-lightning"
    lightning.mkdir(exist_ok=True)
    torch.manual_seed(SEED + 2)
    _sdxl_unet().save_pretrained(lightning / "unet", safe_serialization=True)
    (lightning / "unet" / "diffusion_pytorch_model.safetensors").replace(lightning / "unet.safetensors")
    for leftover in (lightning / "unet").iterdir():
        leftover.unlink()
    (lightning / "unet").rmdir()
    # Turbo is a full repo of its own whose scheduler is Euler ancestral with trailing timesteps.
    turbo_scheduler = EulerAncestralDiscreteScheduler(**_SCHEDULE, timestep_spacing="trailing")
    _sdxl(SEED + 3, tokenizer, turbo_scheduler).save_pretrained(
        dest / "tiny-sdxl-turbo", safe_serialization=True
    )

    # Stable Video Diffusion: image in, frames out (x8 temporal VAE, 224 px CLIP image encoder).
    _svd(SEED + 5).save_pretrained(dest / "tiny-svd", safe_serialization=True)

    # A Real-ESRGAN-architecture upscaler (RRDBNet, x4) with 8 features and one block.
    write_tiny_esrgan(dest / "tiny-esrgan" / "tiny-esrgan-x4.safetensors", SEED + 4)

    toml_path = dest / "models.toml"
    toml_path.write_text(_TOML, encoding="utf-8")
    log.info("wrote tiny models to %s", dest)
    return toml_path


_TOML = """\
# Tiny random-weight models written by inference.tiny.make_tiny: they draw noise, fast, on a CPU.
default = "tiny-sd15"

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


def _tokenizer(tmp: Path) -> CLIPTokenizer:
    """A byte-level CLIP tokenizer: one token per character, so 77-token truncation is exercised."""
    chars = list(_bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab |= {c + "</w>": i + 256 for i, c in enumerate(chars)}
    vocab |= {"<|startoftext|>": _BOS, "<|endoftext|>": _EOS}
    (tmp / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(vocab=str(tmp / "vocab.json"), merges=str(tmp / "merges.txt"), model_max_length=77)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table (the base of CLIP's BPE vocabulary)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _text_config() -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=_VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=32,
        bos_token_id=_BOS,
        eos_token_id=_EOS,
        pad_token_id=_EOS,
    )


def _vae() -> AutoencoderKL:
    """Four blocks = the production x8 downscale, so latent sizes match real models."""
    return AutoencoderKL(
        block_out_channels=(8, 16, 32, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=64,
    )


def _sd15(seed: int, tokenizer: CLIPTokenizer) -> StableDiffusionPipeline:
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=8,
    )
    vae = _vae()
    text_encoder = CLIPTextModel(_text_config())
    scheduler = DDIMScheduler(**_SCHEDULE, clip_sample=False, set_alpha_to_one=False)
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _svd(seed: int) -> StableVideoDiffusionPipeline:
    """The tiny-models note's SVD: spatio-temporal UNet (32, 64), 32-group temporal VAE with four
    blocks (x8, as the real one), a 224 px CLIP vision tower, v-prediction Euler with Karras sigmas."""
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=8,
        out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=(2, 4),
        num_frames=4,
        projection_class_embeddings_input_dim=96,
        addition_time_embed_dim=32,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 32, 32),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
    )
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=32, num_hidden_layers=2, num_attention_heads=4, image_size=224,
        intermediate_size=37, patch_size=32,
    ))
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, interpolation_type="linear",
        num_train_timesteps=1000, prediction_type="v_prediction", sigma_max=700.0, sigma_min=0.002,
        steps_offset=1, timestep_spacing="leading", timestep_type="continuous", use_karras_sigmas=True,
    )
    return StableVideoDiffusionPipeline(
        vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )


def _sdxl_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 2),
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64,
        norm_num_groups=8,
    )


def _sdxl(seed: int, tokenizer: CLIPTokenizer, scheduler: Any) -> StableDiffusionXLPipeline:
    torch.manual_seed(seed)
    unet = _sdxl_unet()
    vae = _vae()
    text_encoder = CLIPTextModel(_text_config())
    text_encoder_2 = CLIPTextModelWithProjection(_text_config())
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
    )
