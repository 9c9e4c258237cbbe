"""The parts of a LoRA training step that the trainer and bench/train.py share: the adapter on the
UNet's attention projections, the optimiser the device supports, one denoising-loss step, and the
precision a device trains in.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

log = logging.getLogger(__name__)

TARGET_MODULES = ["to_q", "to_k", "to_v", "to_out.0"]
ADAPTER = "atelier_train"


def train_dtype(device: str) -> torch.dtype:
    """bf16 where the GPU has it, fp16 on older GPUs, fp32 on CPUs (half precision is slow there)."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def add_lora(unet: Any, *, rank: int, alpha: float, seed: int) -> list[torch.nn.Parameter]:
    """Freeze the UNet and give its attention projections a trainable LoRA, initialised from ``seed``
    (the global generator is forked, not changed), its weights in fp32 over a half-precision base.
    Returns the trainable parameters."""
    unet.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights="gaussian", target_modules=TARGET_MODULES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet.add_adapter(config, adapter_name=ADAPTER)
    params = [p for p in unet.parameters() if p.requires_grad]
    for param in params:
        param.data = param.data.float()
    return params


def lora_state(unet: Any) -> dict[str, torch.Tensor]:
    """The adapter's weights with PEFT's adapter-free names (``<module>.lora_A.weight``)."""
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(unet, adapter_name=ADAPTER).items()}


def load_lora_state(unet: Any, state: dict[str, torch.Tensor]) -> None:
    result = set_peft_model_state_dict(unet, state, adapter_name=ADAPTER)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ValueError(f"checkpoint has LoRA keys this UNet lacks: {unexpected[:3]}")


def make_optimizer(params: list[torch.nn.Parameter], *, lr: float, device: str) -> torch.optim.Optimizer:
    """bitsandbytes' 8-bit AdamW on CUDA where it is installed (a quarter of AdamW's state memory),
    else torch's AdamW (fused on CUDA)."""
    if device.startswith("cuda") and importlib.util.find_spec("bitsandbytes") is not None:
        import bitsandbytes

        return bitsandbytes.optim.AdamW8bit(params, lr=lr, weight_decay=1e-2)
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-2, fused=device.startswith("cuda"))


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    return type(optimizer).__name__


@dataclass(frozen=True, slots=True)
class Example:
    """One cached training example: latents and text conditioning, as the UNet takes them."""

    latents: torch.Tensor  # (1, 4, h/8, w/8), already scaled by the VAE's factor
    text: torch.Tensor  # (1, 77, cross-attention width)
    pooled: torch.Tensor | None = None  # SDXL: the second encoder's pooled embedding
    time_ids: torch.Tensor | None = None  # SDXL: original size, crop offset, target size


def loss_for(unet: Any, scheduler: Any, example: Example, *, generator: torch.Generator, dtype: torch.dtype,
             device: str) -> torch.Tensor:
    """The denoising loss on one example at a random timestep, with noise drawn from ``generator``
    (on the CPU, so a resumed run draws the same noise as an uninterrupted one on any device)."""
    latents = example.latents
    noise = torch.randn(latents.shape, generator=generator, dtype=torch.float32)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator)
    latents, noise, timesteps = latents.to(device, torch.float32), noise.to(device), timesteps.to(device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction_type = scheduler.config.prediction_type
    target = scheduler.get_velocity(latents, noise, timesteps) if prediction_type == "v_prediction" else noise
    added = None
    if example.pooled is not None:
        added = {"text_embeds": example.pooled.to(device, dtype), "time_ids": example.time_ids.to(device, dtype)}
    with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype != torch.float32):
        prediction = unet(noisy.to(dtype), timesteps, encoder_hidden_states=example.text.to(device, dtype),
                          added_cond_kwargs=added, return_dict=False)[0]
    return F.mse_loss(prediction.float(), target.float(), reduction="mean")
