"""Tiny single-file checkpoints in the original (A1111 / Civitai, "LDM") key layout, for tests.

diffusers converts that layout to its own (``loaders/single_file_utils.py``) but not back, so this
maps a diffusers pipeline's state dicts to the original names: the UNet's input/middle/output
blocks, the VAE's encoder/decoder blocks with 1x1-conv attention, CLIP ViT-L under
``cond_stage_model.transformer`` (SD 1.x) or ``conditioner.embedders.0.transformer`` (SDXL), and
SDXL's OpenCLIP encoder under ``conditioner.embedders.1.model`` with fused q/k/v projections.
Tests check the mapping by loading the file back with ``from_single_file`` and comparing tensors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

_RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"), ("conv2", "out_layers.3"),
           ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection"))
_UNET_TOP = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
             "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        rest = rest.replace(new, old)
    return rest


def unet_to_original(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """A diffusers UNet2DConditionModel state dict under ``model.diffusion_model.`` original names."""
    per = config["layers_per_block"] + 1
    up_attn = ["CrossAttn" in kind for kind in config["up_block_types"]]
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        head, _, leaf = key.rpartition(".")
        if head in _UNET_TOP:
            new = f"{_UNET_TOP[head]}.{leaf}"
        elif m := re.match(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"input_blocks.{1 + int(m[1]) * per + int(m[2])}.0.{_resnet(m[3])}"
        elif m := re.match(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            new = f"input_blocks.{1 + int(m[1]) * per + int(m[2])}.1.{m[3]}"
        elif m := re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", key):
            new = f"input_blocks.{1 + int(m[1]) * per + per - 1}.0.op.{m[2]}"
        elif m := re.match(r"mid_block\.resnets\.(\d+)\.(.*)", key):
            new = f"middle_block.{2 * int(m[1])}.{_resnet(m[2])}"
        elif m := re.match(r"mid_block\.attentions\.0\.(.*)", key):
            new = f"middle_block.1.{m[1]}"
        elif m := re.match(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", key):
            new = f"output_blocks.{int(m[1]) * per + int(m[2])}.0.{_resnet(m[3])}"
        elif m := re.match(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.*)", key):
            new = f"output_blocks.{int(m[1]) * per + int(m[2])}.1.{m[3]}"
        elif m := re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", key):
            slot = 2 if up_attn[int(m[1])] else 1
            new = f"output_blocks.{int(m[1]) * per + per - 1}.{slot}.conv.{m[2]}"
        else:
            raise KeyError(f"no original name for UNet key {key}")
        out[f"model.diffusion_model.{new}"] = value
    return out


def vae_to_original(state: dict[str, torch.Tensor], config: Any) -> dict[str, torch.Tensor]:
    """A diffusers AutoencoderKL state dict under ``first_stage_model.`` original names."""
    n_up = len(config["up_block_types"])
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.resnets\.", r"encoder.down.\1.block.", new)
        new = re.sub(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.", r"encoder.down.\1.downsample.", new)
        new = re.sub(r"decoder\.up_blocks\.(\d+)\.resnets\.",
                     lambda m: f"decoder.up.{n_up - 1 - int(m[1])}.block.", new)
        new = re.sub(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.",
                     lambda m: f"decoder.up.{n_up - 1 - int(m[1])}.upsample.", new)
        new = re.sub(r"mid_block\.resnets\.(\d+)\.", lambda m: f"mid.block_{int(m[1]) + 1}.", new)
        if "mid_block.attentions.0." in new:
            new = new.replace("mid_block.attentions.0.", "mid.attn_1.")
            for old_name, ldm in (("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"),
                                  ("to_out.0", "proj_out")):
                new = new.replace(f".{old_name}.", f".{ldm}.")
            if value.ndim == 2:  # the original attention projections are 1x1 convolutions
                value = value[:, :, None, None]
        out[f"first_stage_model.{new}"] = value
    return out


def open_clip_to_original(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """A CLIPTextModelWithProjection state dict in OpenCLIP's layout (fused q/k/v, transposed projection)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "text_model.embeddings.position_embedding.weight":
            out[prefix + "positional_embedding"] = value
        elif key == "text_model.embeddings.token_embedding.weight":
            out[prefix + "token_embedding.weight"] = value
        elif key.startswith("text_model.final_layer_norm."):
            out[prefix + "ln_final." + key.rsplit(".", 1)[1]] = value
        elif key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            fused.setdefault(f"{prefix}transformer.resblocks.{m[1]}.attn.in_proj_{m[3]}", {})[m[2]] = value
        elif m := re.match(r"text_model\.encoder\.layers\.(\d+)\.(.*)", key):
            rest = (m[2].replace("self_attn.out_proj", "attn.out_proj").replace("layer_norm1", "ln_1")
                    .replace("layer_norm2", "ln_2").replace("mlp.fc1", "mlp.c_fc").replace("mlp.fc2", "mlp.c_proj"))
            out[f"{prefix}transformer.resblocks.{m[1]}.{rest}"] = value
        elif key != "text_model.embeddings.position_ids":
            raise KeyError(f"no original name for OpenCLIP key {key}")
    for key, parts in fused.items():
        out[key] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    return out


def pipeline_to_original(pipe: Any) -> dict[str, torch.Tensor]:
    """Every weight of an SD 1.5 or SDXL pipeline under the names an A1111 checkpoint uses."""
    out = unet_to_original(pipe.unet.state_dict(), pipe.unet.config)
    out |= vae_to_original(pipe.vae.state_dict(), pipe.vae.config)
    # Checkpoints name CLIP's weights under text_model. (newer transformers drop it from CLIPTextModel).
    clip = {k if k.startswith("text_model.") else f"text_model.{k}": v
            for k, v in pipe.text_encoder.state_dict().items() if not k.endswith("position_ids")}
    if getattr(pipe, "text_encoder_2", None) is not None:
        out |= {f"conditioner.embedders.0.transformer.{k}": v for k, v in clip.items()}
        out |= open_clip_to_original(pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model.")
    else:
        out |= {f"cond_stage_model.transformer.{k}": v for k, v in clip.items()}
    return out


def write_checkpoint(folder: Path, dest: Path) -> Path:
    """Load the diffusers pipeline in ``folder`` and write it as one original-layout ``dest`` file."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(folder))
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in pipeline_to_original(pipe).items()}, str(dest))
    return dest


def tiny_sdxl_folder(base_folder: Path, dest: Path) -> Path:
    """A tiny SDXL whose two text encoders differ in width (32 and 48), as CLIP-L and OpenCLIP bigG do.

    diffusers tells SDXL's encoders apart in a single file by their widths; with the suite's tiny
    SDXL (both 32 wide) it would fill the second encoder from the first one's weights.
    """
    from diffusers import StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    from inference.testing import components

    torch.manual_seed(components.SEED + 40)
    base = StableDiffusionXLPipeline.from_pretrained(str(base_folder))
    unet = UNet2DConditionModel(**{**dict(base.unet.config), "cross_attention_dim": 80,
                                   "projection_class_embeddings_input_dim": 6 * 8 + 48})
    wide = components.text_config()
    wide.hidden_size, wide.projection_dim = 48, 48
    pipe = StableDiffusionXLPipeline(vae=base.vae, text_encoder=CLIPTextModel(components.text_config()),
                                     text_encoder_2=CLIPTextModelWithProjection(wide), tokenizer=base.tokenizer,
                                     tokenizer_2=base.tokenizer_2, unet=unet, scheduler=base.scheduler)
    pipe.save_pretrained(dest, safe_serialization=True)
    return dest


def write_single_file_models(tiny_root: Path, dest: Path) -> Path:
    """Original-layout checkpoints of a tiny SD 1.5 and SDXL in ``dest/checkpoints`` and a models.toml
    serving them (configs from the tiny folders, as an offline server's ``[single_file]`` table names them)."""
    sdxl_config = tiny_sdxl_folder(tiny_root / "tiny-sdxl", dest / "config-sdxl")
    write_checkpoint(tiny_root / "tiny-sd15", dest / "checkpoints" / "tiny sd15 model.safetensors")
    write_checkpoint(sdxl_config, dest / "checkpoints" / "pony" / "tiny-pony.safetensors")
    toml = dest / "models.toml"
    toml.write_text(
        'packaged = false\ndefault = "tiny-sd15-file"\n\n'
        f'[single_file]\nsd15 = "{tiny_root / "tiny-sd15"}"\nsdxl = "config-sdxl"\n\n'
        '[models.tiny-sd15-file]\nsource = "checkpoints/tiny sd15 model.safetensors"\nsteps = 4\n'
        'scheduler = "euler-a"\nclip_skip = 2\n\n'
        '[models.tiny-pony]\nkind = "sdxl"\nsource = "checkpoints/pony/tiny-pony.safetensors"\nsteps = 4\n'
        'width = 256\nheight = 256\n', encoding="utf-8")
    return toml
