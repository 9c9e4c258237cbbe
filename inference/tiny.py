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
    ControlNetModel,
    DDIMScheduler,
    DDPMScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    IFPipeline,
    IFSuperResolutionPipeline,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionUpscalePipeline,
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
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
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

    # OpenPose ControlNets for /pose: copies of each base UNet's encoder (ControlNetModel.from_unet),
    # as the real ones were initialised, saved as the standalone folders the hub ships.
    torch.manual_seed(SEED + 6)
    _controlnet(_sd15_unet()).save_pretrained(dest / "tiny-controlnet-sd15", safe_serialization=True)
    torch.manual_seed(SEED + 7)
    _controlnet(_sdxl_unet()).save_pretrained(dest / "tiny-controlnet-sdxl", safe_serialization=True)
    # The Stable Diffusion x4 upscaler (also DeepFloyd IF's stage III).
    _sd_x4(SEED + 8, tokenizer).save_pretrained(dest / "tiny-sd-x4", safe_serialization=True)
    # SD 2.x: the SD pipeline with a linear-projection UNet and a v-prediction schedule.
    _sd2(SEED + 9, tokenizer).save_pretrained(dest / "tiny-sd2", safe_serialization=True)
    # SD 3: MMDiT, two CLIP encoders with projections and a T5 encoder, flow matching.
    _sd3(SEED + 10, tokenizer).save_pretrained(dest / "tiny-sd3", safe_serialization=True)
    # DeepFloyd IF: pixel-space stage I (T5-conditioned) and the stage II super-resolution UNet.
    stage_1, stage_2 = _deepfloyd(SEED + 11)
    stage_1.save_pretrained(dest / "tiny-if" / "stage-1", safe_serialization=True)
    stage_2.save_pretrained(dest / "tiny-if" / "stage-2", safe_serialization=True)

    toml_path = dest / "models.toml"
    toml_path.write_text(_TOML, encoding="utf-8")
    log.info("wrote tiny models to %s", dest)
    return toml_path


_TOML = """\
# Tiny random-weight models written by inference.tiny.make_tiny: they draw noise, fast, on a CPU.
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


def _sd15_unet(**changes: Any) -> UNet2DConditionModel:
    config: dict[str, Any] = {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
        "attention_head_dim": 8,
        "norm_num_groups": 8,
    }
    return UNet2DConditionModel(**(config | changes))


def _controlnet(unet: UNet2DConditionModel) -> ControlNetModel:
    """A ControlNet over ``unet``; its zero convolutions (the output ones and the last layer of the
    conditioning embedding) get random weights, because zeros, as ``from_unet`` leaves them, would
    make the control image change nothing a test could see."""
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 32, 32))
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                     controlnet.controlnet_cond_embedding.conv_out]:
            conv.weight.normal_(0.0, 0.3)
    return controlnet


def _sd15(seed: int, tokenizer: CLIPTokenizer) -> StableDiffusionPipeline:
    torch.manual_seed(seed)
    unet = _sd15_unet()
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


def _sd_x4(seed: int, tokenizer: CLIPTokenizer) -> StableDiffusionUpscalePipeline:
    """The x4 upscaler as the tiny-models note measured it: a UNet over 4 latent + 3 image channels
    with noise-level class embeddings, a three-block (x4) VAE, DDIM v-prediction, max noise 350."""
    torch.manual_seed(seed)
    unet = _sd15_unet(in_channels=7, num_class_embeds=1000, attention_head_dim=(2, 4), use_linear_projection=True)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 32), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        scaling_factor=0.08333,
    )
    return StableDiffusionUpscalePipeline(
        vae=vae, text_encoder=CLIPTextModel(_text_config()), tokenizer=tokenizer, unet=unet,
        low_res_scheduler=DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.0001, beta_end=0.02),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        max_noise_level=350,
    )


def _sd2(seed: int, tokenizer: CLIPTokenizer) -> StableDiffusionPipeline:
    """SD 2.x's shape: linear projections and per-block heads in the UNet, v-prediction in the scheduler
    config (the engine keeps the folder's config, so every sampler predicts v)."""
    torch.manual_seed(seed)
    unet = _sd15_unet(attention_head_dim=(2, 4), use_linear_projection=True)
    scheduler = DDIMScheduler(**_SCHEDULE, clip_sample=False, set_alpha_to_one=False, prediction_type="v_prediction")
    return StableDiffusionPipeline(
        vae=_vae(), text_encoder=CLIPTextModel(_text_config()), tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def _t5(d_model: int) -> tuple[T5EncoderModel, PreTrainedTokenizerFast]:
    """A 2-layer T5 encoder and a character-level T5 tokenizer (a tokenizer.json, no sentencepiece)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]
    pieces += [(chr(c), -2.0) for c in range(33, 127)]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2))
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer = T5TokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                extra_ids=0, model_max_length=512)
    config = T5Config(vocab_size=len(pieces), d_model=d_model, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    return T5EncoderModel(config), tokenizer


def _sd3(seed: int, tokenizer: CLIPTokenizer) -> StableDiffusion3Pipeline:
    """SD 3's MMDiT over an x8 VAE with SD 3's latent shift and scale; joint attention over CLIP-L +
    CLIP-G hidden states (32 + 32, zero-padded) and T5 (64), pooled projections 32 + 32."""
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(
        sample_size=16, patch_size=2, in_channels=4, num_layers=2, attention_head_dim=8, num_attention_heads=4,
        caption_projection_dim=32, joint_attention_dim=64, pooled_projection_dim=64, out_channels=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 32, 32), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        sample_size=64, shift_factor=0.0609, scaling_factor=1.5035,
    )
    text_encoder_3, tokenizer_3 = _t5(64)
    return StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=CLIPTextModelWithProjection(_text_config()), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_text_config()), tokenizer_2=tokenizer,
        text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3,
    )


def _deepfloyd(seed: int) -> tuple[IFPipeline, IFSuperResolutionPipeline]:
    """IF's stage I (3 -> 6 channels: noise and learned variance) and stage II (the low-res image as
    3 more input channels, noise level as a timestep class embedding), both T5-conditioned, as in
    diffusers' own IF tests. Stage II ships without a text encoder: stage I's embeddings are passed on."""
    torch.manual_seed(seed)
    text_encoder, tokenizer = _t5(32)
    unet_args: dict[str, Any] = {
        "layers_per_block": 1, "block_out_channels": (32, 64),
        "down_block_types": ("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
        "up_block_types": ("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        "out_channels": 6, "cross_attention_dim": 32, "encoder_hid_dim": 32, "attention_head_dim": 8,
        "addition_embed_type": "text", "addition_embed_type_num_heads": 2, "cross_attention_norm": "group_norm",
        "resnet_time_scale_shift": "scale_shift", "act_fn": "gelu", "norm_num_groups": 8,
    }
    schedule: dict[str, Any] = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2",
                                "beta_start": 0.0001, "beta_end": 0.02}
    scheduler = DDPMScheduler(**schedule, thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.0,
                              prediction_type="epsilon", variance_type="learned_range")
    stage_1 = IFPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, unet=UNet2DConditionModel(sample_size=32, in_channels=3,
                                                                                  **unet_args),
        scheduler=scheduler, safety_checker=None, feature_extractor=None, watermarker=None,
        requires_safety_checker=False,
    )
    stage_2_unet = UNet2DConditionModel(sample_size=128, in_channels=6, class_embed_type="timestep",
                                        mid_block_scale_factor=1.414, time_embedding_act_fn="gelu",
                                        time_embedding_dim=32, **unet_args)
    stage_2 = IFSuperResolutionPipeline(
        tokenizer=None, text_encoder=None, unet=stage_2_unet, scheduler=DDPMScheduler.from_config(scheduler.config),
        image_noising_scheduler=DDPMScheduler(**schedule), safety_checker=None, feature_extractor=None,
        watermarker=None, requires_safety_checker=False,
    )
    return stage_1, stage_2
