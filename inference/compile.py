"""How a pipeline is prepared for speed on its device: ``ATELIER_COMPILE=off|regional|max``.

- ``off``: eager, as loaded (the default on CPU: compiling would cost more than it saves).
- ``regional`` (the default on CUDA): the denoiser's repeated blocks (transformer blocks and ResNet
  blocks) are compiled one block class at a time, so the compile cost is that of a few small graphs
  shared by every instance rather than one graph of the whole UNet; channels_last memory format
  for the convolutions, and fused QKV projections where the pipeline has them.
- ``max``: the whole denoiser and the VAE decoder compiled (longest warm-up, fastest steady state).

Shapes are compiled dynamic (``dynamic=True``), so the registry's aspect sizes and the batch sizes a
worker runs share graphs instead of recompiling for each: after one warm-up pass over the aspects
at batch 1 and 2 (``Engine.warm_up``, run between jobs while the worker is idle) a job compiles
nothing. LoRAs go into fixed slots that are part of the UNet before it is compiled
(inference/hotswap.py): switching LoRAs copies weights and scale values, which traces nothing, and
the warm-up also runs each shape with a slot on.

Fused QKV replaces the attention's three projections by one, which LoRAs (trained on the separate
projections) would no longer reach, so it is only used where LoRAs are off. TF32 and Dynamo's
limits are process-wide settings: ``configure_process`` is called from the wiring place only
(bot/client.py, bot/__main__.py).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch

log = logging.getLogger(__name__)

CompileMode = Literal["off", "regional", "max"]
MODES: tuple[CompileMode, ...] = ("off", "regional", "max")
# The block classes compiled by ``regional``: what UNets and DiT denoisers repeat.
REPEATED_BLOCKS = frozenset({"BasicTransformerBlock", "ResnetBlock2D", "JointTransformerBlock"})
_MARK = "_atelier_compiled"


def default_mode(device: str) -> CompileMode:
    return "regional" if torch.device(device).type == "cuda" else "off"


def resolve(mode: str | None, device: str) -> CompileMode:
    """The mode to use on ``device``: the setting, or the device's default when it is unset/"auto"."""
    if mode in (None, "", "auto"):
        return default_mode(device)
    if mode not in MODES:
        raise ValueError(f"ATELIER_COMPILE must be one of {', '.join(MODES)}; got {mode!r}")
    return mode  # type: ignore[return-value]


def configure_process(mode: CompileMode | str | None) -> None:
    """Process-wide settings for the GPU path (the wiring place calls this once at start-up).

    TF32 for what stays float32 (schedulers' math, upcast attention) on Ampere and newer; a
    Dynamo recompile limit high enough for every block shape of a UNet at two batch sizes and a few
    LoRAs (past it Dynamo silently falls back to eager for that block); and no duck shaping, which
    would give a square latent's height and width one symbol and recompile for every other aspect."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if mode not in (None, "off"):
        from torch import _dynamo
        from torch.fx.experimental import _config as fx_config

        _dynamo.config.recompile_limit = max(_dynamo.config.recompile_limit, 64)
        fx_config.use_duck_shape = False


def denoiser(pipe: Any) -> Any:
    return pipe.unet if getattr(pipe, "unet", None) is not None else getattr(pipe, "transformer", None)


def compile_regions(model: torch.nn.Module, *, backend: str = "inductor", **options: Any) -> int:
    """Compile each repeated block of ``model`` in place; returns how many were compiled."""
    count = 0
    for module in model.modules():
        if type(module).__name__ in REPEATED_BLOCKS:
            module.compile(backend=backend, dynamic=True, **options)
            count += 1
    return count


def optimize(pipe: Any, mode: CompileMode, device: str, *, backend: str = "inductor", fuse_qkv: bool = True) -> bool:
    """Prepare ``pipe`` in place for ``mode``; idempotent. Returns whether anything was compiled.

    Modules shared with other pipelines (from_pipe) are compiled once for all of them."""
    model = denoiser(pipe)
    if mode == "off" or model is None or getattr(model, _MARK, False):
        return False
    cuda = torch.device(device).type == "cuda"
    vae = getattr(pipe, "vae", None)
    # Compiled code guards on each parameter's requires_grad: inference never needs gradients, and a
    # flag that later flips (a LoRA load marks base weights frozen) would recompile every block.
    model.requires_grad_(False)
    if cuda:
        model.to(memory_format=torch.channels_last)
        if vae is not None:
            vae.to(memory_format=torch.channels_last)
    if fuse_qkv and hasattr(pipe, "fuse_qkv_projections"):
        pipe.fuse_qkv_projections()
    options: dict[str, Any] = {"mode": "max-autotune-no-cudagraphs"} if mode == "max" and cuda and backend == "inductor" else {}
    if mode == "regional":
        blocks = compile_regions(model, backend=backend)
        log.info("compiled %d repeated blocks of %s (%s)", blocks, type(model).__name__, backend)
    else:
        model.compile(backend=backend, dynamic=True, **options)
        if vae is not None:
            vae.decoder.compile(backend=backend, dynamic=True, **options)
        log.info("compiled %s and the VAE decoder whole (%s)", type(model).__name__, backend)
    setattr(model, _MARK, True)
    return True
