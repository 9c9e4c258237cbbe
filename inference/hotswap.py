"""LoRA slots for compiled denoisers: a fixed set of PEFT adapters in the UNet whose weights are
swapped in place (diffusers' LoRA hotswap), so switching LoRAs never changes what Dynamo traced.

A compiled block guards on the structure of its PEFT layers: which adapters exist, which are active,
whether adapters are disabled. Loading and deleting adapters per LoRA would change that structure on
every switch and recompile every block. Instead, when the engine compiles (ATELIER_COMPILE regional
or max) and LoRAs are on, each SD/SDXL UNet gets ``count`` slots before it is compiled: zero LoRAs of
rank ``rank`` on kohya's UNet targets (attention projections, the transformer's in/out projections
and feed-forward), with their scales as tensors. A job's i-th LoRA is copied into slot i (diffusers'
``load_lora_weights(..., hotswap=True)``, UNet part only; a smaller rank is zero-padded, layers it
does not train are zeroed), its weight is written into the scale tensors, and the slots are switched
on; afterwards they are switched off (a disabled PEFT layer returns exactly its base layer's
output). The graph variants per block and shape: adapters off, and slots 0..k-1 on.

What a slot cannot take (``NotSwappable``): a rank above ``rank``, layers outside the slot targets,
per-layer alphas that differ (PEFT refuses an ``alpha_pattern``), DoRA or LoRA biases, a file whose
adapter config travels in its metadata, a job with more LoRAs than slots. The adapter cache loads
those as their own adapter for the job (the blocks recompile for it) and logs why. Text encoders
are not compiled and diffusers cannot hotswap them: a LoRA's text-encoder layers stay ordinary
cached adapters.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraLayer
from peft.utils.hotswap import prepare_model_for_compiled_hotswap
from safetensors.torch import load_file

from inference.checkpoints import read_header
from inference.limits import DEFAULT_LORA_RANK, DEFAULT_LORA_SLOTS

log = logging.getLogger(__name__)

# The largest LoRA rank a slot takes (Engine(lora_rank=)); above it a LoRA is loaded as its own adapter.
# Memory per slot at rank 64 in fp16: about 55 MB on an SD 1.5 UNet, 350 MB on SDXL.
DEFAULT_RANK = DEFAULT_LORA_RANK
# LoRAs one job can switch in without recompiling (the bot allows three a job).
DEFAULT_SLOTS = DEFAULT_LORA_SLOTS
SLOT_PREFIX = "atelier_slot_"
# kohya's sd-scripts train these UNet layers (diffusers' own scripts a subset of them).
TARGETS = ("to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2")
# Text-encoder keys in the layouts load_lora_weights reads; everything else is the UNet's.
TEXT_PREFIXES = ("lora_te_", "lora_te1_", "lora_te2_", "text_encoder.", "text_encoder_2.", "te.", "te1.", "te2.")
# diffusers' LoRA config carried in a file's metadata (the config it builds from a plain dict differs).
METADATA_KEY = "lora_adapter_metadata"
_ATTR = "_atelier_lora_slots"
# How the layouts name a LoRA's two matrices (PEFT, kohya, diffusers' older attention processors).
DOWN_SUFFIXES = ("lora_A.weight", "lora_down.weight", "lora.down.weight")
UP_SUFFIXES = ("lora_B.weight", "lora_up.weight", "lora.up.weight")


class NotSwappable(Exception):
    """A LoRA that the slots cannot take; the message says why (for the log)."""


class SlotsFull(NotSwappable):
    """A job with more LoRAs (that have UNet layers) than there are slots: the rest go the slow way."""


def split(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A LoRA file's tensors -> (UNet part, text-encoder part), each still in the file's layout."""
    unet: dict[str, torch.Tensor] = {}
    text: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        (text if key.startswith(TEXT_PREFIXES) else unet)[key] = value
    return unet, text


def read(path: Path) -> dict[str, torch.Tensor]:
    """A LoRA file's tensors; NotSwappable when its metadata carries the adapter config."""
    if METADATA_KEY in (read_header(path).get("__metadata__") or {}):
        raise NotSwappable("its adapter config is in the file's metadata")
    return load_file(str(path))


def rank_of(unet_part: dict[str, torch.Tensor]) -> int:
    """The highest rank among a UNet part's LoRA matrices (down/A: rows, up/B: columns)."""
    rank = 0
    for key, value in unet_part.items():
        if value.ndim < 2:
            continue
        if key.endswith(DOWN_SUFFIXES):
            rank = max(rank, int(value.shape[0]))
        elif key.endswith(UP_SUFFIXES):
            rank = max(rank, int(value.shape[1]))
    return rank


class Slots:
    """The LoRA slots of one UNet, and which file each holds (its cache key) at which scales."""

    def __init__(self, unet: torch.nn.Module, rank: int, count: int) -> None:
        self.rank = rank
        self.names = [f"{SLOT_PREFIX}{index}" for index in range(count)]
        self.layers = [module for module in unet.modules() if isinstance(module, LoraLayer)]
        self.holders: list[Any] = [None] * count
        # Per slot: each layer's scale for weight 1 (alpha / rank of the LoRA it holds; 1 while empty).
        self.units: list[list[float]] = [[1.0] * len(self.layers) for _ in range(count)]
        self.swaps = 0

    @classmethod
    def install(cls, unet: torch.nn.Module, *, rank: int = DEFAULT_RANK, count: int = DEFAULT_SLOTS) -> Slots:
        """Add the slots to ``unet`` (before it is compiled); idempotent."""
        existing = getattr(unet, _ATTR, None)
        if existing is not None:
            return existing
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            for index in range(count):
                # Zero B: an empty slot adds nothing even when switched on.
                unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=list(TARGETS)),
                                 adapter_name=f"{SLOT_PREFIX}{index}")
        # Scales become tensors, so a new LoRA's alpha or a member's weight is a value, not a constant
        # baked into the compiled code.
        prepare_model_for_compiled_hotswap(unet, config=unet.peft_config, check_compiled="ignore")
        unet.requires_grad_(False)
        slots = cls(unet, rank, count)
        for layer in slots.layers:
            layer.enable_adapters(False)
        setattr(unet, _ATTR, slots)
        log.info("%d LoRA slots of rank %d on %s (%d layers)", count, rank, type(unet).__name__, len(slots.layers))
        return slots

    def fill(self, pipe: Any, index: int, key: Any, unet_part: dict[str, torch.Tensor]) -> None:
        """Copy a LoRA's UNet part into slot ``index`` (nothing to do when it already holds ``key``)."""
        if self.holders[index] == key:
            return
        rank = rank_of(unet_part)
        if rank > self.rank:  # PEFT would silently grow the slot's tensors (and recompile)
            raise NotSwappable(f"rank {rank} is above the slots' {self.rank}")
        name = self.names[index]
        unet = pipe.unet
        config = unet.peft_config[name]
        # diffusers' failure path deletes a failed adapter from the layers where it is active, and
        # forgets its config: nothing is active while it swaps, and the config is put back.
        for layer in self.layers:
            layer.set_adapter([])
        self.holders[index] = None  # half-swapped until it succeeds
        try:
            _hotswap_unet(pipe, unet_part, name)
        except (ValueError, RuntimeError, KeyError, NotImplementedError) as exc:
            unet.peft_config.setdefault(name, config)
            raise NotSwappable(f"{type(exc).__name__}: {exc}") from None
        scales = [layer.scaling[name] for layer in self.layers]
        self.units[index] = torch.stack([s.detach().float().reshape(()) for s in scales]).tolist()  # one sync
        self.holders[index] = key
        self.swaps += 1


def _hotswap_unet(pipe: Any, unet_part: dict[str, torch.Tensor], name: str) -> None:
    """``load_lora_weights(..., hotswap=True)`` for the UNet alone: the same conversion (SDXL's
    loader passes its UNet config, for kohya files in the original block layout) without the text
    encoders' loaders, which would warn on every swap that the part has none of their keys."""
    from diffusers.loaders import StableDiffusionXLLoraLoaderMixin

    extra = {"unet_config": pipe.unet.config} if isinstance(pipe, StableDiffusionXLLoraLoaderMixin) else {}
    state, alphas, metadata = pipe.lora_state_dict(dict(unet_part), return_lora_metadata=True, **extra)
    if not all("lora" in key for key in state):
        raise ValueError("Invalid LoRA checkpoint: not every key is a LoRA key")
    pipe.load_lora_into_unet(state, network_alphas=alphas, unet=pipe.unet, adapter_name=name, _pipeline=pipe,
                             hotswap=True, metadata=metadata)


def switch_on(pipe: Any, slots: Slots, weights: list[float], *, unet_adapters: list[str],
              text_adapters: list[str], scales: dict[str, float]) -> None:
    """Slots 0..len(weights)-1 on at those weights and the named ordinary adapters on at ``scales``:
    ``unet_adapters`` in the UNet, ``text_adapters`` in the text encoders. Each component gets only
    its own names (a compiled block guards on its layers' active names). PEFT marks the active
    adapters trainable: freeze the pipeline afterwards (lora._frozen)."""
    for position, layer in enumerate(slots.layers):
        for index, weight in enumerate(weights):
            layer.scaling[slots.names[index]].fill_(slots.units[index][position] * weight)
    unet_active = slots.names[: len(weights)] + unet_adapters
    for name in pipe._lora_loadable_modules:
        component = getattr(pipe, name, None)
        if component is None:
            continue
        active = unet_active if component is pipe.unet else text_adapters
        for layer in component.modules():
            if not isinstance(layer, LoraLayer):
                continue
            for adapter, scale in scales.items():
                layer.set_scale(adapter, scale)  # a no-op where the layer lacks the adapter
            layer.enable_adapters(True)
            layer.set_adapter(active)  # marks them trainable: the caller freezes the pipeline after


def slots_of(unet: Any) -> Slots | None:
    return getattr(unet, _ATTR, None)
