"""Tiny random-weight models for /describe and /blend: a BLIP captioner, a WD14-style ONNX tagger,
and IP-Adapter weights with their CLIP image encoder, each in the layout its real repository has,
so the engine loads them through the same code paths as the real ones.

- captioner: ``BlipForConditionalGeneration`` + ``BlipProcessor`` saved with ``save_pretrained``
  (as ``Salesforce/blip-image-captioning-large`` ships).
- tagger: ``model.onnx`` (NHWC float input in BGR 0-255, one sigmoid score per tag) and
  ``selected_tags.csv`` (tag_id, name, category, count; category 9 = rating, 0 = general,
  4 = character), as SmilingWolf's WD taggers ship. Written with the ``onnx`` package's helper API
  (a development dependency); without it no tagger is written.
- IP-Adapter: ``<subfolder>/<weight>.safetensors`` with ``image_proj.*`` and ``ip_adapter.N.to_k_ip`` /
  ``to_v_ip`` keys, and ``<subfolder>/image_encoder/`` (a ``CLIPVisionModelWithProjection``), as
  h94/IP-Adapter ships ``models/`` (SD 1.5) and ``sdxl_models/`` (SDXL).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from transformers import (
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
    BlipTextConfig,
    BlipVisionConfig,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

# Words the tiny captioner can say (random weights pick among them).
_WORDS = ["a", "cat", "dog", "red", "blue", "house", "tree", "on", "the", "of", "with", "sky", "girl", "boy",
          "river", "city", "night", "sun", "flower", "car", "painting", "photo", "small", "large"]
_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
# The tiny tagger's tags: (name, category). Ratings first, as in the real file.
TAGS: list[tuple[str, int]] = [("general", 9), ("sensitive", 9), ("questionable", 9), ("explicit", 9),
                               ("1girl", 0), ("solo", 0), ("long_hair", 0), ("smile", 0), ("blue_eyes", 0),
                               ("outdoors", 0), ("school_uniform", 0), ("(cosplay)", 0), ("realistic", 0),
                               ("hatsune_miku", 4)]
TAGGER_SIDE = 32
ENCODER_SIDE = 32


def write_blip(dest: Path, seed: int) -> Path:
    """A 2-layer BLIP captioner with a 30-token vocabulary and a 32 px vision tower."""
    dest.mkdir(parents=True, exist_ok=True)
    vocab = dest / "vocab.txt"
    vocab.write_text("\n".join(_SPECIAL + _WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab), do_lower_case=True, bos_token="[DEC]", additional_special_tokens=[])
    vocab.unlink()
    ids = {token: index for index, token in enumerate(_SPECIAL + _WORDS)}
    text = BlipTextConfig(vocab_size=len(ids), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                          num_attention_heads=4, encoder_hidden_size=32, max_position_embeddings=64,
                          bos_token_id=ids["[DEC]"], eos_token_id=ids["[SEP]"], sep_token_id=ids["[SEP]"],
                          pad_token_id=ids["[PAD]"])
    vision = BlipVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=32)
    torch.manual_seed(seed)
    model = BlipForConditionalGeneration(BlipConfig(text_config=text.to_dict(), vision_config=vision.to_dict(),
                                                    projection_dim=32)).eval()
    model.save_pretrained(dest, safe_serialization=True)
    processor = BlipProcessor(image_processor=BlipImageProcessor(size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    processor.save_pretrained(dest)
    return dest


def can_write_tagger() -> bool:
    return importlib.util.find_spec("onnx") is not None


def write_tagger(dest: Path, seed: int, *, bias: float = 1.5) -> Path:
    """A WD14-layout tagger: the image's mean colour through one random linear layer and a sigmoid.

    ``bias`` shifts every general and character score up (the default makes the tiny tagger see an
    anime picture in most images; a negative one makes it see none)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    count = len(TAGS)
    weight = (rng.standard_normal((3, count)) * 0.01).astype(np.float32)
    offsets = np.array([0.0 if category == 9 else bias for _, category in TAGS], dtype=np.float32)
    offsets[TAGS.index(("realistic", 0))] = -bias  # a photo cue the tiny tagger does not see
    offsets[TAGS.index(("hatsune_miku", 4))] = bias + 1.0  # characters need a higher score
    offsets[:4] = rng.standard_normal(4).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input_1:0", "axes"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "weight"], ["logits"]),
         helper.make_node("Add", ["logits", "offsets"], ["shifted"]),
         helper.make_node("Sigmoid", ["shifted"], ["predictions_sigmoid"])],
        "tiny-wd-tagger",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, [None, TAGGER_SIDE, TAGGER_SIDE, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, [None, count])],
        [numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes"),
         numpy_helper.from_array(weight / 255.0, "weight"), numpy_helper.from_array(offsets, "offsets")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(dest / "model.onnx"))
    rows = ["tag_id,name,category,count"] + [f"{i},{name},{category},{1000 - i}" for i, (name, category) in
                                             enumerate(TAGS)]
    (dest / "selected_tags.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return dest


def write_ip_adapter(root: Path, subfolder: str, weight_name: str, unet: torch.nn.Module, seed: int) -> Path:
    """IP-Adapter weights for ``unet`` (its cross-attention layers and width) and a tiny CLIP image
    encoder, under ``root/subfolder`` as diffusers' ``load_ip_adapter`` reads them."""
    import safetensors.torch

    folder = root / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, image_size=ENCODER_SIDE,
        patch_size=8, projection_dim=16))
    encoder.save_pretrained(folder / "image_encoder", safe_serialization=True)
    cross = int(unet.config.cross_attention_dim)
    channels = list(unet.config.block_out_channels)
    state: dict[str, torch.Tensor] = {
        "image_proj.proj.weight": torch.randn(cross * 4, 16) * 0.2,
        "image_proj.proj.bias": torch.randn(cross * 4) * 0.1,
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        if name.startswith("mid_block"):
            hidden = channels[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(channels))[int(name[len("up_blocks.")])]
        else:
            hidden = channels[int(name[len("down_blocks.")])]
        # Strong enough that the reference visibly moves a tiny model's image.
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.5
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.5
        key_id += 2
    safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, str(folder / weight_name))
    return folder


def write_all(dest: Path, seed: int) -> str:
    """Every model above under ``dest``; returns their registry tables (TOML) for the tiny models.toml."""
    from inference.testing import components

    write_blip(dest / "tiny-blip", seed)
    write_ip_adapter(dest / "tiny-ip-adapter", "models", "ip-adapter_sd15.safetensors", components.sd15_unet(),
                     seed + 1)
    write_ip_adapter(dest / "tiny-ip-adapter", "sdxl_models", "ip-adapter_sdxl.safetensors",
                     components.sdxl_unet(), seed + 2)
    toml = TOML
    if can_write_tagger():
        write_tagger(dest / "tiny-wd-tagger", seed + 3)
        toml += TAGGER_TOML
    return toml


TOML = """
# /describe: a tiny BLIP captioner (and the tiny WD tagger, where onnx was installed to write it).
[models.tiny-blip]
kind = "caption"
source = "tiny-blip"
description = "Tiny BLIP captioner (random weights, for tests)"
max_new_tokens = 12

# /blend and /imagine style_ref: tiny IP-Adapters in h94/IP-Adapter's layout, one per family.
[models.tiny-ip-adapter-sd15]
kind = "ip-adapter"
source = "tiny-ip-adapter"
subfolder = "models"
weight_name = "ip-adapter_sd15.safetensors"
serves = "sd1"
description = "Tiny IP-Adapter for SD 1.5 (random weights, for tests)"

[models.tiny-ip-adapter-sdxl]
kind = "ip-adapter"
source = "tiny-ip-adapter"
subfolder = "sdxl_models"
weight_name = "ip-adapter_sdxl.safetensors"
serves = "sdxl"
description = "Tiny IP-Adapter for SDXL (random weights, for tests)"
"""

TAGGER_TOML = """
[models.tiny-wd-tagger]
kind = "tagger"
source = "tiny-wd-tagger"
description = "Tiny WD14-style tagger (random weights, for tests)"
"""
