"""Dynamic batching: compatible jobs of different members share one pipeline call, and each image is
bit for bit the image its job would have got alone.

Why batched images usually differ: matrix kernels pick their blocking, and so their summation
order, from the shapes they are given. On CPU three things change with the batch size:

- ``nn.Linear`` on a 2-D input (the UNet's timestep and SDXL's added-condition embeddings, the
  ResNet blocks' time projections): M is the batch, and M = 1 takes a matrix-vector path while
  M > 1 rounds differently again depending on M. Computed as a batched matmul (one product per
  sample, each with the same M) the result no longer depends on the batch (`_invariant_linear`;
  applied to every Linear of the UNet, whatever its input rank).
- Convolutions take another path for a batch of one than for two or more (oneDNN); two or more
  agree with each other for every sample and position. So on CPU a UNet call with one sample runs
  as two copies of it and keeps the first (only text-to-image without classifier-free guidance —
  Lightning and Turbo — ever calls the UNet with one sample).
- The VAE decodes a batch differently from one image: it decodes one image at a time (diffusers'
  VAE slicing), as a lone job does.

Text encoders run per job (each job's prompt is encoded alone, as in a lone run), so they never
see a batch. Per-image generators keep each image's noise its own. Tested bit for bit on CPU
(tests/inference/test_batching.py).

Only on CPU devices. On CUDA, cuBLAS/cuDNN choose kernels by shape as well, so the patch could not
make a batched image bit-identical there anyway, and per-sample products would give away the
larger matrix products batching exists for. CUDA pipelines keep their plain layers: a batched
image is near-identical to the lone one (it may differ in the last bits, nothing visible), and
rerunning the job alone reproduces its image exactly.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

_MARK = "_atelier_batch_invariant"


def _invariant_linear(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``F.linear`` as one matrix product per sample (dim 0), so no sample's rounding depends on the others."""
    if x.dim() < 2:
        return nn.functional.linear(x, self.weight, self.bias)
    rows = x.reshape(x.shape[0], -1, x.shape[-1])
    weight = self.weight.t().expand(rows.shape[0], -1, -1)
    out = torch.baddbmm(self.bias, rows, weight) if self.bias is not None else torch.bmm(rows, weight)
    return out.reshape(*x.shape[:-1], self.weight.shape[0])


def _pad_single(forward: Any) -> Any:
    """Wrap a UNet forward so that a one-sample call runs as two copies and returns the first."""

    def twice(value: Any) -> Any:
        if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == 1:
            return torch.cat([value, value])
        if isinstance(value, dict):
            return {key: twice(item) for key, item in value.items()}
        return value

    def call(sample: torch.Tensor, timestep: Any, encoder_hidden_states: Any = None, *args: Any, **kwargs: Any) -> Any:
        if sample.shape[0] != 1:
            return forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
        out = forward(twice(sample), twice(timestep), twice(encoder_hidden_states), *args,
                      **{key: twice(value) for key, value in kwargs.items()})
        if isinstance(out, tuple):
            return (out[0][:1], *out[1:])
        out.sample = out.sample[:1]
        return out

    return call


def invariant_linears(model: nn.Module) -> None:
    """Every ``nn.Linear`` of ``model`` as per-sample products (bench/gpu.py measures what this costs)."""
    for module in model.modules():
        if type(module) is nn.Linear:
            module.forward = _invariant_linear.__get__(module)


def applies_to(device: str) -> bool:
    """Whether batch invariance is made on ``device``: CPU devices only (see the module doc)."""
    return str(device).split(":")[0] == "cpu"


def is_batch_invariant(pipe: Any) -> bool:
    return bool(getattr(getattr(pipe, "unet", None), _MARK, False))


def make_batch_invariant(pipe: Any, device: str) -> None:
    """Make ``pipe``'s image for a seed independent of what else is in its batch (see the module doc).

    A no-op on other devices than the CPU. Idempotent; changes the modules in place, so pipelines
    sharing them (img2img, ControlNet via ``from_pipe``) get the same behaviour."""
    unet = getattr(pipe, "unet", None)
    if unet is None or getattr(unet, _MARK, False) or not applies_to(device):
        return
    invariant_linears(unet)
    unet.forward = _pad_single(unet.forward)
    vae = getattr(pipe, "vae", None)
    if vae is not None and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    setattr(unet, _MARK, True)


def prompt_rows(pipe: Any, prompt_kwargs: dict[str, Any], *, guidance: float, device: str) -> dict[str, torch.Tensor]:
    """One job's prompt as embeddings for a batched call (one row; repeat it per image).

    ``prompt_kwargs`` is what inference.prompts.encode made: embeddings already (weighted or long
    prompts) or the strings, which are encoded here exactly as the pipeline would for a lone job."""
    if "prompt_embeds" in prompt_kwargs:
        return {key: value for key, value in prompt_kwargs.items() if value is not None}
    use_cfg = guidance > 1.0 and getattr(pipe.unet.config, "time_cond_proj_dim", None) is None
    with torch.no_grad():
        if getattr(pipe, "text_encoder_2", None) is not None:
            embeds, negative, pooled, negative_pooled = pipe.encode_prompt(
                prompt=prompt_kwargs["prompt"], device=torch.device(device), num_images_per_prompt=1,
                do_classifier_free_guidance=use_cfg, negative_prompt=prompt_kwargs.get("negative_prompt"))
            rows = {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
            if use_cfg:
                rows.update(negative_prompt_embeds=negative, negative_pooled_prompt_embeds=negative_pooled)
            return rows
        embeds, negative = pipe.encode_prompt(prompt_kwargs["prompt"], torch.device(device), 1, use_cfg,
                                              prompt_kwargs.get("negative_prompt"))
    rows = {"prompt_embeds": embeds}
    if use_cfg:
        rows["negative_prompt_embeds"] = negative
    return rows


def shape_key(rows: dict[str, torch.Tensor]) -> tuple[Any, ...]:
    """Jobs whose embeddings have these shapes can be stacked into one call (long prompts have more tokens)."""
    return tuple(sorted((key, tuple(value.shape[1:])) for key, value in rows.items()))


def stack(per_image: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate one row per image into the call's batch (same keys, same shapes)."""
    return {key: torch.cat([rows[key] for rows in per_image]) for key in per_image[0]}
