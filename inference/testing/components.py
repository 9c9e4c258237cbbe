"""The miniature components the tiny models are built from: a byte-level tokenizer (514 entries),
a 2-layer CLIP text encoder, a two-block UNet and a four-block VAE with the production x8 geometry,
so a 512x512 request really decodes 64x64 latents. Every builder draws its weights from torch's
global generator, so a seed set before the call makes the files reproducible.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLTemporalDecoder,
    ControlNetModel,
    DDIMScheduler,
    DDPMScheduler,
    DiffusionPipeline,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    IFSuperResolutionPipeline,
    SD3Transformer2DModel,
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

# Each tiny model is built as the pipeline class the engine loads its kind with.
from inference.cache import PIPELINE_CLASSES

SEED = 20240601
_VOCAB_SIZE = 514
_BOS, _EOS = 512, 513

# The noise schedule SD 1.5 and SDXL were trained with; the tiny models share it so schedulers
# behave as they do on real weights.
SCHEDULE: dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "steps_offset": 1,
}



def tokenizer(tmp: Path) -> CLIPTokenizer:
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


def text_config() -> CLIPTextConfig:
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


def sd15_unet(**changes: Any) -> UNet2DConditionModel:
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


def controlnet(unet: UNet2DConditionModel) -> ControlNetModel:
    """A ControlNet over ``unet``; its zero convolutions (the output ones and the last layer of the
    conditioning embedding) get random weights, because zeros, as ``from_unet`` leaves them, would
    make the control image change nothing a test could see."""
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 32, 32))
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                     controlnet.controlnet_cond_embedding.conv_out]:
            conv.weight.normal_(0.0, 0.3)
    return controlnet


def _sd(tokenizer: CLIPTokenizer, unet: UNet2DConditionModel, scheduler: DDIMScheduler, *,
        kind: str = "sd15") -> DiffusionPipeline:
    """An SD 1.x/2.x pipeline around ``unet``: the x8 VAE and one CLIP text encoder, no safety checker."""
    return PIPELINE_CLASSES[kind](
        vae=_vae(), text_encoder=CLIPTextModel(text_config()), tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )


def sd15(seed: int, tokenizer: CLIPTokenizer) -> DiffusionPipeline:
    torch.manual_seed(seed)
    return _sd(tokenizer, sd15_unet(), DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False))


def sd15_inpaint(seed: int, tokenizer: CLIPTokenizer) -> DiffusionPipeline:
    """A dedicated SD 1.5 inpainting model as the real ones are shaped: the UNet reads 9 channels
    (noisy latents, the mask, the masked image's latents)."""
    torch.manual_seed(seed)
    return _sd(tokenizer, sd15_unet(in_channels=9), DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False),
               kind="sd15-inpaint")


def sdxl_inpaint(seed: int, tokenizer: CLIPTokenizer, scheduler: Any) -> DiffusionPipeline:
    """A dedicated SDXL inpainting model (diffusers/stable-diffusion-xl-1.0-inpainting-0.1's shape): 9-channel UNet."""
    return sdxl(seed, tokenizer, scheduler, kind="sdxl-inpaint", in_channels=9)


def svd(seed: int) -> DiffusionPipeline:
    """The tiny-models note's SVD: spatio-temporal UNet (32, 64), 32-group temporal VAE with four
    blocks (x8, as the real one), a 224 px CLIP vision tower, v-prediction Euler with Karras sigmas."""
    torch.manual_seed(seed)
    unet = UNetSpatioTemporalConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=8, out_channels=4,
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32, num_attention_heads=(2, 4), num_frames=4, projection_class_embeddings_input_dim=96,
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
    return PIPELINE_CLASSES["svd"](
        vae=vae, image_encoder=image_encoder, unet=unet, scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )


def sdxl_unet(**changes: Any) -> UNet2DConditionModel:
    """SD 1.5's two blocks with SDXL's conditioning: per-block heads and depths, time and size embeddings."""
    return sd15_unet(**{"attention_head_dim": (2, 4), "use_linear_projection": True,
                        "transformer_layers_per_block": (1, 2), "addition_embed_type": "text_time",
                        "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 6 * 8 + 32,
                        "cross_attention_dim": 64, **changes})


def sdxl(seed: int, tokenizer: CLIPTokenizer, scheduler: Any, *, kind: str = "sdxl", **unet: Any) -> DiffusionPipeline:
    torch.manual_seed(seed)
    unet_model = sdxl_unet(**unet)
    vae = _vae()
    text_encoder = CLIPTextModel(text_config())
    return PIPELINE_CLASSES[kind](
        vae=vae, text_encoder=text_encoder, text_encoder_2=CLIPTextModelWithProjection(text_config()),
        tokenizer=tokenizer, tokenizer_2=tokenizer, unet=unet_model, scheduler=scheduler,
    )


def sd_x4(seed: int, tokenizer: CLIPTokenizer) -> DiffusionPipeline:
    """The x4 upscaler as the tiny-models note measured it: a UNet over 4 latent + 3 image channels
    with noise-level class embeddings, a three-block (x4) VAE, DDIM v-prediction, max noise 350."""
    torch.manual_seed(seed)
    unet = sd15_unet(in_channels=7, num_class_embeds=1000, attention_head_dim=(2, 4), use_linear_projection=True)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 32), in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        scaling_factor=0.08333,
    )
    return PIPELINE_CLASSES["sd-x4"](
        vae=vae, text_encoder=CLIPTextModel(text_config()), tokenizer=tokenizer, unet=unet,
        low_res_scheduler=DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.0001, beta_end=0.02),
        scheduler=DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
                                prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1),
        max_noise_level=350,
    )


def sd2(seed: int, tokenizer: CLIPTokenizer) -> DiffusionPipeline:
    """SD 2.x's shape: linear projections and per-block heads in the UNet, v-prediction in the scheduler
    config (the engine keeps the folder's config, so every sampler predicts v)."""
    torch.manual_seed(seed)
    unet = sd15_unet(attention_head_dim=(2, 4), use_linear_projection=True)
    scheduler = DDIMScheduler(**SCHEDULE, clip_sample=False, set_alpha_to_one=False, prediction_type="v_prediction")
    return _sd(tokenizer, unet, scheduler)


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


def sd3(seed: int, tokenizer: CLIPTokenizer) -> DiffusionPipeline:
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
    return PIPELINE_CLASSES["sd3"](
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=CLIPTextModelWithProjection(text_config()), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(text_config()), tokenizer_2=tokenizer,
        text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3,
    )


def deepfloyd(seed: int) -> tuple[DiffusionPipeline, IFSuperResolutionPipeline]:
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
    stage_1 = PIPELINE_CLASSES["deepfloyd-if"](
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
