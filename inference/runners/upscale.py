"""Real-ESRGAN-class upscaling (RRDBNet), tiled, so a 2048 px input needs megabytes, not gigabytes.

spandrel would load many architectures, but importing it imports torchvision (its LaMa and
RestoreFormer architectures do so at package import), and the PyPI torchvision wheel does not
work beside the local torch build. RRDBNet is small, so it is written out here, compatible with
the state dicts of Real-ESRGAN's releases (``RealESRGAN_x4plus.pth``, ``RealESRGAN_x2plus.pth``,
BasicSR key names, optionally under ``params_ema``/``params``) in .pth or .safetensors. The
hyper-parameters (features, blocks, growth channels, scale) are read from the weights' shapes.

Tiling: the input is cut into ``tile`` px squares, each run with ``pad`` px of context on every
side, and only its centre is kept, so seams are invisible and peak memory is one padded tile's
activations plus the uint8 output.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from inference.limits import UPSCALE_FACTORS, UPSCALE_MAX_INPUT
from inference.media import decode_job_image
from inference.models import ModelSpec, RequestRefused
from inference.runners.base import cancellable, stop_if_cancelled, upscaled_result, wrong_kind
from inference.runners.txt2img import StepsInterrupted
from inference.types import GenerationRequest, GenerationResult

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

DEFAULT_TILE = 256
DEFAULT_PAD = 16


class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat: int, num_grow_ch: int) -> None:
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator as Real-ESRGAN ships it: x4 internally; x2/x1 models pixel-unshuffle first."""

    def __init__(self, *, scale: int = 4, num_feat: int = 64, num_block: int = 23, num_grow_ch: int = 32,
                 num_in_ch: int = 3, num_out_ch: int = 3) -> None:
        super().__init__()
        if scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, not {scale}")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(num_feat, num_grow_ch) for _ in range(num_block)))
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        import safetensors.torch

        state = safetensors.torch.load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("params_ema", "params"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or "conv_first.weight" not in state:
        raise ValueError(f"{path.name} is not a Real-ESRGAN (BasicSR RRDBNet) state dict")
    return state


def from_state_dict(state: dict[str, torch.Tensor]) -> RRDBNet:
    """Build the network the weights describe and load them (strict: every key must match)."""
    first = state["conv_first.weight"]
    num_feat, in_channels = int(first.shape[0]), int(first.shape[1])
    scale = {3: 4, 12: 2, 48: 1}.get(in_channels)
    if scale is None:
        raise ValueError(f"unsupported input channels {in_channels} (expected 3, 12 or 48)")
    blocks = {int(m.group(1)) for k in state if (m := re.match(r"body\.(\d+)\.", k))}
    num_grow_ch = int(state["body.0.rdb1.conv1.weight"].shape[0])
    model = RRDBNet(scale=scale, num_feat=num_feat, num_block=max(blocks) + 1, num_grow_ch=num_grow_ch,
                    num_out_ch=int(state["conv_last.weight"].shape[0]))
    model.load_state_dict(state, strict=True)
    return model.eval()


def load(path: str | Path, device: str, dtype: torch.dtype = torch.float32) -> RRDBNet:
    return from_state_dict(load_state_dict(path)).to(device=device, dtype=dtype)


def tiles(width: int, height: int, tile: int) -> list[tuple[int, int, int, int]]:
    """(left, top, right, bottom) boxes covering the image in row-major order."""
    return [(x, y, min(x + tile, width), min(y + tile, height))
            for y in range(0, height, tile) for x in range(0, width, tile)]


@torch.inference_mode()
def upscale(model: RRDBNet, image: Image.Image, *, device: str, tile: int = DEFAULT_TILE, pad: int = DEFAULT_PAD,
            on_tile: Callable[[int, int], None] | None = None,
            is_cancelled: Callable[[], bool] | None = None) -> Image.Image:
    """The image at ``model.scale`` times its size; ``on_tile(done, total)`` after each tile.

    Raises StepsInterrupted (from the txt2img runner) when ``is_cancelled`` turns true between tiles.
    """
    scale = model.scale
    dtype = next(model.parameters()).dtype
    source = np.asarray(image.convert("RGB"), dtype=np.uint8)
    height, width = source.shape[:2]
    output = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    boxes = tiles(width, height, tile)
    # pixel_unshuffle needs sides divisible by its factor: keep padded tiles on that grid.
    grid = model.unshuffle
    for done, (left, top, right, bottom) in enumerate(boxes, start=1):
        if is_cancelled is not None and done > 1 and is_cancelled():
            raise StepsInterrupted(done - 1)
        l0, t0 = max(left - pad, 0), max(top - pad, 0)
        r0, b0 = min(right + pad, width), min(bottom + pad, height)
        patch = source[t0:b0, l0:r0]
        tensor = torch.from_numpy(np.ascontiguousarray(patch).copy()).to(device=device).permute(2, 0, 1)[None].to(dtype) / 255.0
        ph, pw = tensor.shape[2], tensor.shape[3]
        extra_h, extra_w = (-ph) % grid, (-pw) % grid
        if extra_h or extra_w:
            tensor = F.pad(tensor, (0, extra_w, 0, extra_h), mode="reflect" if min(ph, pw) > 1 else "replicate")
        result = model(tensor)[0, :, : ph * scale, : pw * scale]
        result = (result.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        crop = result[(top - t0) * scale:(bottom - t0) * scale, (left - l0) * scale:(right - l0) * scale]
        output[top * scale:bottom * scale, left * scale:right * scale] = crop
        if on_tile is not None:
            on_tile(done, len(boxes))
    return Image.fromarray(output, "RGB")


def fit_scale(image: Image.Image, native: int, wanted: int) -> Image.Image:
    """A native-scale result brought to the wanted factor (x4 model, x2 asked: Lanczos down by 2)."""
    if wanted == native:
        return image
    if wanted > native:
        raise ValueError(f"this upscaler enlarges {native}x; x{wanted} is beyond it")
    factor = wanted / native
    size = (max(1, math.floor(image.width * factor + 0.5)), max(1, math.floor(image.height * factor + 0.5)))
    return image.resize(size, Image.Resampling.LANCZOS)


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: Callable[[int, int], None] | None,
           is_cancelled: Callable[[], bool] | None) -> GenerationResult:
    """The runner of ``esrgan`` models: /upscale and the U buttons, x2 or x4."""
    if request.task != "upscale":
        raise wrong_kind(spec, request)
    if request.scale not in UPSCALE_FACTORS:
        raise RequestRefused(f"Scale must be {' or '.join(map(str, UPSCALE_FACTORS))}; you asked for {request.scale}")
    if not request.init_image:
        raise RequestRefused("Upscaling needs an input image")
    image = decode_job_image(request.init_image)
    limit = int(spec.extra.get("max_input", UPSCALE_MAX_INPUT[request.scale]))
    if image.width * image.height > limit:
        raise RequestRefused(f"x{request.scale} upscaling takes images up to {limit / 1e6:.1f} MP; this one is "
                             f"{image.width}x{image.height}")
    stop_if_cancelled(request, is_cancelled)
    model = engine.upscaler(spec)
    started = time.perf_counter()
    with cancellable(request):
        result = upscale(model, image, device=engine.device, tile=int(spec.extra.get("tile", DEFAULT_TILE)),
                         on_tile=on_step, is_cancelled=is_cancelled)
    result = fit_scale(result, model.scale, request.scale)
    return upscaled_result(spec, request, result, request.scale, time.perf_counter() - started)
