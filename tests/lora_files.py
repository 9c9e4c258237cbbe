"""Tiny LoRA files for the tiny models, in both layouts members download.

Built from the tiny pipelines' own UNet and text encoder with PEFT (rank 4 on the attention
projections). PEFT starts ``lora_B`` at zero, which would make a LoRA that changes nothing, so every
LoRA matrix is randomised from a seed. Written as:

- diffusers/PEFT layout: ``unet.<module>.lora_A.weight`` / ``text_encoder.<module>.lora_B.weight``
  (what ``save_lora_weights`` writes and Hugging Face LoRAs use);
- kohya/Civitai layout: ``lora_unet_<module_with_underscores>.lora_down.weight`` / ``.lora_up.weight``
  / ``.alpha`` and ``lora_te_…`` (``lora_te1_``/``lora_te2_`` for SDXL's two encoders).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel
from peft import LoraConfig, inject_adapter_in_model
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTextModelWithProjection

RANK = 4
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def _lora_state(model: torch.nn.Module, targets: list[str], seed: int) -> dict[str, torch.Tensor]:
    # peft directly: transformers' own add_adapter insists on a newer peft than diffusers needs.
    inject_adapter_in_model(LoraConfig(r=RANK, lora_alpha=RANK, target_modules=targets, init_lora_weights=False), model)
    generator = torch.Generator().manual_seed(seed)
    state = get_peft_model_state_dict(model)
    return {key: torch.randn(value.shape, generator=generator) * 0.5 for key, value in state.items()}


def _kohya(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        module, kind = key.rsplit(".lora_", 1)  # "down_blocks.0....to_q", "A.weight"
        name = f"{prefix}_{module.replace('.', '_')}"
        out[f"{name}.lora_down.weight" if kind.startswith("A") else f"{name}.lora_up.weight"] = value.contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(RANK))
    return out


def write_loras(model_folder: Path, dest: Path, *, sdxl: bool, seed: int = 0) -> dict[str, Path]:
    """Write ``dest/diffusers-style.safetensors`` and ``dest/kohya-style.safetensors``; returns both by layout."""
    dest.mkdir(parents=True, exist_ok=True)
    unet = _lora_state(UNet2DConditionModel.from_pretrained(model_folder, subfolder="unet"), UNET_TARGETS, seed)
    encoder = _lora_state(CLIPTextModel.from_pretrained(model_folder, subfolder="text_encoder"), TEXT_TARGETS,
                          seed + 1)
    diffusers_layout = {f"unet.{k}": v for k, v in unet.items()} | {f"text_encoder.{k}": v for k, v in encoder.items()}
    kohya_layout = _kohya(unet, "lora_unet") | _kohya(
        {k.removeprefix("text_model."): v for k, v in encoder.items()}, "lora_te1_text_model" if sdxl else
        "lora_te_text_model")
    if sdxl:
        second = _lora_state(CLIPTextModelWithProjection.from_pretrained(model_folder, subfolder="text_encoder_2"),
                             TEXT_TARGETS, seed + 2)
        diffusers_layout |= {f"text_encoder_2.{k}": v for k, v in second.items()}
        kohya_layout |= _kohya({k.removeprefix("text_model."): v for k, v in second.items()}, "lora_te2_text_model")
    paths = {"diffusers": dest / "diffusers-style.safetensors", "kohya": dest / "kohya-style.safetensors"}
    save_file({k: v.contiguous() for k, v in diffusers_layout.items()}, str(paths["diffusers"]))
    save_file(kohya_layout, str(paths["kohya"]), metadata={"ss_network_module": "networks.lora"})
    return paths


@pytest.fixture(scope="session")
def tiny_loras(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA folder: ``sd15/{diffusers,kohya}-style`` and ``sdxl/{diffusers,kohya}-style`` for the
    tiny SD 1.5 and SDXL models, plus a file that is not a LoRA (``notes.txt``)."""
    from inference.models import ModelRegistry

    registry = ModelRegistry.load(tiny_models)
    root = tmp_path_factory.mktemp("loras")
    write_loras(Path(registry.get("tiny-sd15").source), root / "sd15", sdxl=False, seed=10)
    write_loras(Path(registry.get("tiny-sdxl").source), root / "sdxl", sdxl=True, seed=20)
    (root / "notes.txt").write_text("not a LoRA", encoding="utf-8")
    return root
