"""Tiny textual-inversion embeddings for the tiny models, in the layouts members download.

- ``sd15-one.pt``: A1111's layout (``string_to_param["*"]``), one vector, saved with torch.save;
- ``sd15-three.safetensors``: kohya's ``emb_params``, three vectors (a multi-vector embedding);
- ``sdxl-neg.safetensors``: SDXL's ``clip_l`` and ``clip_g``, two vectors each.

Vectors are random and large, so a prompt using one visibly changes the conditioning.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig


def _width(model_folder: Path, subfolder: str) -> int:
    return int(CLIPTextConfig.from_pretrained(model_folder, subfolder=subfolder).hidden_size)


def write_embeddings(sd15_folder: Path, sdxl_folder: Path, dest: Path, *, seed: int = 0) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    width = _width(sd15_folder, "text_encoder")
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.randn(1, width, generator=generator) * 3},
                "name": "sd15-one", "step": 100}, dest / "sd15-one.pt")
    save_file({"emb_params": torch.randn(3, width, generator=generator) * 3}, str(dest / "sd15-three.safetensors"))
    save_file({"clip_l": torch.randn(2, _width(sdxl_folder, "text_encoder"), generator=generator) * 3,
               "clip_g": torch.randn(2, _width(sdxl_folder, "text_encoder_2"), generator=generator) * 3},
              str(dest / "sdxl-neg.safetensors"))
    (dest / "readme.txt").write_text("not an embedding", encoding="utf-8")
    return dest


@pytest.fixture(scope="session")
def tiny_embeddings(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embeddings folder for the tiny SD 1.5 and SDXL models (see the module's docstring)."""
    from inference.models import ModelRegistry

    registry = ModelRegistry.load(tiny_models)
    return write_embeddings(Path(registry.get("tiny-sd15").source), Path(registry.get("tiny-sdxl").source),
                            tmp_path_factory.mktemp("embeddings"))
