"""IP-Adapter image prompts for the SD 1.5 and SDXL families: /blend and /imagine style_ref.

An ``ip-adapter`` registry entry names weights in the layout diffusers' ``load_ip_adapter`` reads
(h94/IP-Adapter: ``<subfolder>/<weight_name>`` with ``image_proj.*`` and ``ip_adapter.*`` keys,
and the CLIP image encoder in ``<subfolder>/image_encoder``); ``serves`` says which family (``sd1``
or ``sdxl``). The encoder and weights are loaded once, beside the family's resident pipeline.

The adapter lives in the UNet's attention processors, which every job on that pipeline shares. So
it is installed for one job only (``applied``): the processors, the image projection and the
config value it touches are saved before and put back after, the very same objects, so the next
job runs exactly as on a pipeline that never saw an adapter.

Blending: each reference image's CLIP embedding, mixed by the member's weights (normalised), is
passed as ``ip_adapter_image_embeds``; the mix is rescaled to the images' weighted mean length,
because averaging unit-ish vectors that point apart shortens them, and a short embedding reads to
the adapter as a faint one. Every cross-attention layer runs the adapter at BLEND_SCALE.

Style reference (InstantStyle): on SDXL only the style block takes the image (the second
attention of the first up block, ``up_blocks.0.attentions.1``; the paper's finding is that this
block carries style and ``down_blocks.2.attentions.1`` the layout, which stays off), so the
reference's colours and strokes come through without its subject. SD 1.5 has no such measured
block: it gets the adapter on its up (decoder) blocks only, down and middle blocks off, which
keeps more of the reference's content than SDXL does.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from PIL import Image

from inference import hub
from inference.lora import kind_family
from inference.media import decode_job_image
from inference.models import ModelSpec, RequestRefused

if TYPE_CHECKING:
    from inference.engine import Engine

SDXL_STYLE_BLOCK = "up_blocks.0.attentions.1."


@dataclass
class Adapter:
    """An adapter loaded for one resident pipeline: its image encoder, and, once its first job has
    built them, the attention processors and image projection it puts into that pipeline's UNet (kept
    for the next jobs, so the weights are not converted and copied to the device every job)."""

    name: str
    encoder: Any
    processor: Any
    state: dict[str, dict[str, torch.Tensor]] | None
    layers: dict[str, Any] | None = None
    projection: Any = None

    @property
    def components(self) -> dict[str, Any]:
        """For the memory budgets (inference/memory.modules_of)."""
        built = [self.projection, *(self.layers or {}).values()] if self.projection is not None else []
        return {"image_encoder": self.encoder, "ip_layers": torch.nn.ModuleList(built)}


def adapter_spec(engine: Engine, spec: ModelSpec) -> ModelSpec:
    """The IP-Adapter entry for ``spec``'s family: the one its own ``ip_adapter`` names, else the
    first ``ip-adapter`` entry that ``serves`` it."""
    named = spec.extra.get("ip_adapter")
    if named:
        return engine.registry.get(str(named))
    family = kind_family(spec.kind)
    for candidate in engine.registry.specs():
        if candidate.kind == "ip-adapter" and candidate.extra.get("serves") == family:
            return candidate
    raise RequestRefused(f"No IP-Adapter is installed for {spec.name}'s family; image prompts need one "
                         "(an `ip-adapter` entry in models.toml)")


def _root(spec: ModelSpec) -> Path:
    """The folder holding the entry's files (its hub snapshot, downloaded on first use)."""
    if not hub.is_hub_id(spec.source):
        return Path(spec.source)
    files = hub.helper_files(spec)
    for name in files[1:]:
        hub.fetch_file(spec.name, spec.source, name)
    return hub.fetch_file(spec.name, spec.source, files[0]).parents[files[0].count("/")]


def load(spec: ModelSpec, device: str, dtype: torch.dtype) -> Adapter:
    from safetensors import safe_open
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    root = _root(spec)
    subfolder = str(spec.extra.get("subfolder", ""))
    encoder_folder = root / str(spec.extra.get("image_encoder", Path(subfolder, "image_encoder").as_posix()))
    weights = root / subfolder / str(spec.extra.get("weight_name", "ip-adapter.safetensors"))
    if not weights.is_file() or not (encoder_folder / "config.json").is_file():
        raise RequestRefused(f"{spec.name}: expected {weights} and an image encoder in {encoder_folder}")
    state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    with safe_open(str(weights), framework="pt", device="cpu") as handle:
        for key in handle.keys():
            part, _, rest = key.partition(".")
            if part in state:
                state[part][rest] = handle.get_tensor(key).to(dtype)
    if not state["image_proj"] or not state["ip_adapter"]:
        raise RequestRefused(f"{spec.name}: {weights.name} has no image_proj/ip_adapter weights")
    encoder = CLIPVisionModelWithProjection.from_pretrained(encoder_folder, dtype=dtype).to(device).eval()
    side = int(encoder.config.image_size)
    return Adapter(spec.name, encoder, CLIPImageProcessor(size=side, crop_size=side), state)


def embedding(adapter: Adapter, images: list[Image.Image], weights: list[float]) -> torch.Tensor:
    """The weighted mix of the images' CLIP embeddings, (1, D), at their weighted mean length."""
    pixels = adapter.processor(images=[image.convert("RGB") for image in images], return_tensors="pt").pixel_values
    encoder = adapter.encoder
    with torch.inference_mode():
        embeds = encoder(pixels.to(encoder.device, encoder.dtype)).image_embeds.float()
    share = torch.tensor(weights, dtype=torch.float32, device=embeds.device)
    share = share / share.sum()
    mixed = (share[:, None] * embeds).sum(0, keepdim=True)
    length = (share * embeds.norm(dim=-1)).sum()
    return (mixed * (length / mixed.norm().clamp_min(1e-6))).to(encoder.dtype)


def layer_scale(name: str, kind: str, mode: str, scale: float) -> float:
    """The adapter's scale in the attention layer ``name`` (a processor name of the UNet)."""
    if mode != "style":
        return scale
    if kind_family(kind) == "sdxl":
        return scale if name.startswith(SDXL_STYLE_BLOCK) else 0.0
    return scale if name.startswith("up_blocks.") else 0.0


@contextmanager
def applied(unet: Any, adapter: Adapter, *, kind: str, mode: str, scale: float) -> Iterator[None]:
    """The adapter in ``unet``'s attention for one job; everything it changed put back after."""
    saved = dict(unet.attn_processors)
    saved_projection = unet.encoder_hid_proj
    saved_type = unet.config.encoder_hid_dim_type
    try:
        if adapter.layers is None:  # the first job: diffusers builds the layers from the weights
            unet._load_ip_adapter_weights([adapter.state], low_cpu_mem_usage=False)
            adapter.layers = {name: processor for name, processor in unet.attn_processors.items()
                              if isinstance(getattr(processor, "scale", None), list)}
            adapter.projection, adapter.state = unet.encoder_hid_proj, None
        else:
            unet.set_attn_processor({**saved, **adapter.layers})
            unet.encoder_hid_proj = adapter.projection
            unet.config.encoder_hid_dim_type = "ip_image_proj"
        for name, processor in unet.attn_processors.items():
            if isinstance(getattr(processor, "scale", None), list):
                processor.scale = [layer_scale(name, kind, mode, scale)]
        yield
    finally:
        unet.set_attn_processor(dict(saved))
        unet.encoder_hid_proj = saved_projection
        unet.config.encoder_hid_dim_type = saved_type


def job_embeds(engine: Engine, spec: ModelSpec, pipe: Any, images: list[str], weights: list[float],
               guidance: float) -> tuple[Adapter, list[torch.Tensor]]:
    """The adapter for ``spec``'s family and the job's ``ip_adapter_image_embeds`` (with the zero
    negative first when the pipeline runs classifier-free guidance, as diffusers expects)."""
    entry = adapter_spec(engine, spec)
    dtype = pipe.unet.dtype
    adapter = engine.cache.companion((f"{entry.name}:{spec.name}", engine.device), pipe, lambda: load(entry, engine.device, dtype))
    mixed = embedding(adapter, [decode_job_image(text) for text in images], weights)[None]  # (1, 1, D)
    cfg = guidance > 1.0 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None
    if cfg:
        mixed = torch.cat([torch.zeros_like(mixed), mixed])
    return adapter, [mixed.to(pipe.unet.device, dtype)]


def parameters(adapter: Adapter, mode: str, weights: list[float], scale: float) -> dict[str, str]:
    """The PNG's record of the image prompt: ``IP Adapter`` and ``IP Adapter weights`` for a blend,
    ``Style reference`` and ``Style weight`` for a style reference."""
    if mode == "style":
        return {"Style reference": adapter.name, "Style weight": f"{scale:g}"}
    return {"IP Adapter": adapter.name, "IP Adapter weights": ", ".join(f"{w:g}" for w in weights)}


def check(request_images: list[str], weights: list[float], mode: str, scale: float) -> None:
    """The worker's own check of an image-prompt request (the bot checked it before)."""
    from inference.limits import BLEND_IMAGES, IP_WEIGHT_RANGE, STYLE_WEIGHT_RANGE

    if mode not in ("blend", "style"):
        raise RequestRefused(f"Unknown image-prompt mode {mode!r}")
    low, high = BLEND_IMAGES if mode == "blend" else (1, 1)
    if not low <= len(request_images) <= high:
        raise RequestRefused(f"A {mode} takes {low}-{high} images; this one has {len(request_images)}")
    if len(weights) != len(request_images) or not all(math.isfinite(w) and IP_WEIGHT_RANGE[0] <= w <= IP_WEIGHT_RANGE[1]
                                                      for w in weights) or sum(weights) <= 0:
        raise RequestRefused("Each image needs a weight from 0 to 5, and at least one above 0")
    if not (math.isfinite(scale) and STYLE_WEIGHT_RANGE[0] <= scale <= STYLE_WEIGHT_RANGE[1]):
        raise RequestRefused(f"The image-prompt scale must be {STYLE_WEIGHT_RANGE[0]:g}-{STYLE_WEIGHT_RANGE[1]:g}")
