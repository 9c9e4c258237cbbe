"""The trained LoRA as kohya's sd-scripts write it, so every UI loads it: ``lora_unet_<module>.lora_down
.weight`` / ``.lora_up.weight`` / ``.alpha`` (the module's diffusers path with dots as underscores,
which diffusers, A1111, ComfyUI and kohya itself read for SD 1.5 and SDXL) and ``ss_*`` metadata.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from inference.training.settings import TRAINER, TRAINER_VERSION, TrainingSettings

# What kohya writes in ss_base_model_version, and modelspec's architecture ids, per family.
BASE_VERSIONS = {"sd1": "sd_v1", "sdxl": "sdxl_base_v1-0"}
ARCHITECTURES = {"sd1": "stable-diffusion-v1/lora", "sdxl": "stable-diffusion-xl-v1-base/lora"}


def to_kohya(peft_state: Mapping[str, torch.Tensor], *, alpha: float, prefix: str = "lora_unet",
             dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
    """PEFT's ``<module>.lora_A.weight`` / ``.lora_B.weight`` (as get_peft_model_state_dict names them)
    -> kohya's down/up/alpha keys, one alpha per module."""
    out: dict[str, torch.Tensor] = {}
    for key, value in peft_state.items():
        module, _, part = key.rpartition(".lora_")
        if not module or part not in ("A.weight", "B.weight"):
            raise ValueError(f"not a PEFT LoRA key: {key}")
        name = f"{prefix}_{module.replace('.', '_')}"
        suffix = "lora_down.weight" if part == "A.weight" else "lora_up.weight"
        out[f"{name}.{suffix}"] = value.detach().to("cpu", dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    return out


def metadata(settings: TrainingSettings, *, name: str, steps_done: int, image_hashes: list[str],
             captions: list[str], started_at: float, finished_at: float) -> dict[str, str]:
    """kohya's ss_* keys where they fit, modelspec's trigger phrase, and Atelier's own (image hashes)."""
    tags: dict[str, int] = {}
    for caption in captions:
        for tag in (t.strip() for t in caption.split(",")):
            if tag:
                tags[tag] = tags.get(tag, 0) + 1
    return {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(settings.rank),
        "ss_network_alpha": str(settings.lora_alpha),
        "ss_network_args": json.dumps({"target": "unet attention (to_q, to_k, to_v, to_out.0)"}),
        "ss_base_model_version": BASE_VERSIONS[settings.family],
        "ss_sd_model_name": settings.base_model,
        "ss_output_name": name,
        "ss_training_comment": f"{TRAINER} {TRAINER_VERSION}; {settings.kind} LoRA, trigger: {settings.trigger}",
        "ss_max_train_steps": str(settings.steps),
        "ss_steps": str(steps_done),
        "ss_learning_rate": str(settings.learning_rate),
        "ss_unet_lr": str(settings.learning_rate),
        "ss_text_encoder_lr": "0",
        "ss_resolution": f"({settings.resolution}, {settings.resolution})",
        "ss_enable_bucket": str(settings.buckets),
        "ss_num_train_images": str(len(image_hashes)),
        "ss_batch_size_per_device": str(settings.batch_size),
        "ss_seed": str(settings.seed),
        "ss_training_started_at": str(started_at),
        "ss_training_finished_at": str(finished_at),
        "ss_tag_frequency": json.dumps({"images": tags}),
        "ss_dataset_dirs": json.dumps({"images": {"n_repeats": 1, "img_count": len(image_hashes)}}),
        "modelspec.architecture": ARCHITECTURES[settings.family],
        "modelspec.implementation": "diffusers",
        "modelspec.title": name,
        "modelspec.trigger_phrase": settings.trigger,
        "atelier.trainer": f"{TRAINER}/{TRAINER_VERSION}",
        "atelier.kind": settings.kind,
        "atelier.trigger": settings.trigger,
        "atelier.base_model": settings.base_model,
        "atelier.image_sha256": json.dumps(image_hashes),
    }


def save(path: Path, peft_state: Mapping[str, torch.Tensor], meta: dict[str, str], *, alpha: float) -> Path:
    """Write the file next to its final name, then move it in, so no half file is ever listed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    save_file(to_kohya(peft_state, alpha=alpha), str(partial), metadata=meta)
    partial.replace(path)
    return path
