#!/usr/bin/env python3
"""GPU throughput of what production runs: full-size SD 1.5 and SDXL (random weights), one JSON row
per measurement, written and flushed as it goes.

    python3 bench/gpu.py [--out gpu-results.jsonl] [--budget 300] [--steps 30]
    python3 bench/gpu.py --dry-run      # tiny configs on the CPU: checks the script, not the GPU

For a bare device machine: only torch must be installed. diffusers and its dependencies, where
missing, come from wheels fetched beforehand into bench/vendor/ (bench/vendor.py), unpacked behind
the machine's own packages on ``sys.path``. The models are built from their configs (no download).

Rows, in order of importance (a run cut short still has the first ones): the bf16 matmul peak
(after a second of warm-up, so the clocks are up), then per model, batch 1 and 4: eager with plain
layers (what CUDA runs now), eager with the CPU batch-invariance patch (what it cost CUDA before),
SDXL 1024 px with the VAE decode, SD 1.5 in float16 (its production dtype), then ``regional`` and
``max`` compilation as inference/compile.py does them. Each row has seconds per image, UNet calls
per second, MFU against the measured peak, ``max_memory_reserved`` and the warm-up (compile) time.
The whole run stays within ``--budget`` seconds (300 by default): checked before each row and at
every denoising step; a row that does not fit is written as skipped.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "bench" / "vendor"
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402  (the one package the machine must have)


def bring_vendored() -> list[str]:
    """Unpack the wheels in bench/vendor/wheels that fit this interpreter into
    bench/vendor/site-cpXY/ and put that folder *behind* sys.path: installed packages win."""
    wheels = VENDOR / "wheels"
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    site = VENDOR / f"site-{tag}"
    brought = []
    for wheel in sorted(wheels.glob("*.whl")) if wheels.is_dir() else []:
        python, abi, plat = wheel.name[:-4].split("-")[-3:]
        minor = int(python[3:]) if python.startswith("cp3") else 0
        fits = ("x86_64" in plat or plat == "any") and (
            python.startswith("py3") or python == tag
            or (abi == "abi3" and python.startswith("cp3") and minor <= sys.version_info.minor))
        if not fits:
            continue
        marker = site / f".{wheel.name}.done"
        if not marker.exists():
            site.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(site)
            marker.touch()
        brought.append(wheel.name)
    if brought and str(site) not in sys.path:
        sys.path.append(str(site))
        importlib.invalidate_caches()
    return brought


try:
    import diffusers
except ImportError:
    print(f"diffusers missing: using {len(bring_vendored())} wheels from {VENDOR / 'wheels'}", flush=True)
    import diffusers

from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: E402
from diffusers.models.attention_processor import AttnProcessor2_0  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from inference import batching  # noqa: E402
from inference import compile as compiling  # noqa: E402

SD15 = dict(
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8,
)
SDXL = dict(
    sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
    use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=2816,
)
TINY_SD15 = dict(
    sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    cross_attention_dim=32, attention_head_dim=8,
)
TINY_SDXL = dict(
    TINY_SD15, attention_head_dim=(2, 4), use_linear_projection=True, transformer_layers_per_block=(1, 2),
    addition_embed_type="text_time", addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32,
    cross_attention_dim=64,
)
VAE = dict(
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=1024,
)
TINY_VAE = dict(VAE, layers_per_block=1, block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=32, sample_size=64)
# name -> (UNet config, latent side): SDXL at 1024 px, SD 1.5 at 512 px.
MODELS = {"sdxl": (SDXL, 128), "sd15": (SD15, 64)}
TINY_MODELS = {"sdxl": (TINY_SDXL, 8), "sd15": (TINY_SD15, 8)}


class OverBudget(Exception):
    pass


class Budget:
    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.end = self.started + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, need: float = 0.0) -> None:
        if self.left() < need:
            raise OverBudget(f"{self.left():.0f} s left, {need:.0f} s needed")


@dataclass(frozen=True)
class Case:
    model: str
    batch: int
    dtype: str = "bf16"
    compile: str = "off"
    invariant: bool = False
    vae: bool = False
    need: float = 5.0  # seconds the row needs at least (compile warm-up included), on a GPU


def cases() -> list[Case]:
    rows = []
    for batch in (1, 4):
        rows += [Case("sdxl", batch), Case("sdxl", batch, invariant=True), Case("sd15", batch, dtype="fp16"),
                 Case("sd15", batch, invariant=True, dtype="fp16")]
    rows += [Case("sdxl", 1, vae=True), Case("sdxl", 4, vae=True, need=10)]
    for mode, need in (("regional", 40.0), ("max", 120.0)):
        for model, dtype in (("sdxl", "bf16"), ("sd15", "fp16")):
            rows += [Case(model, 1, dtype=dtype, compile=mode, need=need), Case(model, 4, dtype=dtype, compile=mode, need=10)]
    return rows


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, n: int, warm: float = 1.0, measure: float = 1.0) -> float:
    """Dense bf16 matmul FLOP/s: ``warm`` seconds of products first (clocks up), then ``measure``."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for seconds in (warm, measure):
        iters, started = 0, time.perf_counter()
        while True:
            for _ in range(5):
                a @ b
            iters += 5
            sync(device)
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
    return 2 * n**3 * iters / elapsed


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def build_unet(config: dict[str, Any], device: str, dtype: torch.dtype) -> UNet2DConditionModel:
    with torch.device(device):
        unet = UNet2DConditionModel(**config)
    unet = unet.to(dtype).eval().requires_grad_(False)
    unet.set_attn_processor(AttnProcessor2_0())  # scaled_dot_product_attention
    return unet


def unet_inputs(config: dict[str, Any], batch: int, latent: int, device: str, dtype: torch.dtype) -> dict[str, Any]:
    rows = 2 * batch  # classifier-free guidance: conditional and unconditional in one call
    args: dict[str, Any] = {
        "sample": torch.randn(rows, 4, latent, latent, device=device, dtype=dtype),
        "encoder_hidden_states": torch.randn(rows, 77, config["cross_attention_dim"], device=device, dtype=dtype),
    }
    if config.get("addition_embed_type") == "text_time":
        text = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        args["added_cond_kwargs"] = {"text_embeds": torch.randn(rows, text, device=device, dtype=dtype),
                                     "time_ids": torch.randn(rows, 6, device=device, dtype=dtype)}
    return args


def denoise(unet: Any, args: dict[str, Any], steps: int, budget: Budget) -> torch.Tensor:
    latents = args["sample"]
    for step in range(steps):
        budget.check()
        t = torch.full((latents.shape[0],), 999 - step * (1000 // max(steps, 1)), device=latents.device)
        noise = unet(**{**args, "sample": latents}, timestep=t, return_dict=False)[0]
        uncond, cond = noise.chunk(2)
        guided = uncond + 7.0 * (cond - uncond)
        latents = latents - 0.01 * torch.cat([guided, guided])  # the scheduler's cost is negligible
    return latents[: latents.shape[0] // 2]


def count_flops(fn: Any) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return int(counter.get_total_flops())


def run_case(case: Case, *, dry: bool, device: str, steps: int, peak: float, budget: Budget) -> dict[str, Any]:
    config, latent = (TINY_MODELS if dry else MODELS)[case.model]
    dtype = torch.float32 if dry else DTYPES[case.dtype]  # half precision on a CPU is slow and beside the point
    row: dict[str, Any] = {"kind": "measurement", **case.__dict__, "resolution": latent * 8, "steps": steps}
    row.pop("need")
    if dry:
        row["dtype"] = "fp32"
    unet = build_unet(config, device, dtype)
    if case.invariant:
        batching.invariant_linears(unet)
    vae = None
    if case.vae:
        with torch.device(device):
            vae = AutoencoderKL(**(TINY_VAE if dry else VAE)).to(dtype).eval().requires_grad_(False)
    args = unet_inputs(config, case.batch, latent, device, dtype)
    flops = count_flops(lambda: unet(**args, timestep=torch.full((2 * case.batch,), 999, device=device)))
    if case.compile != "off":
        backend = "eager" if dry else "inductor"  # a CPU's inductor would time the C++ compiler
        compiling.optimize(_Parts(unet, vae), case.compile, device, backend=backend, fuse_qkv=True)
    decode_flops = 0
    with torch.no_grad():
        started = time.perf_counter()
        latents = denoise(unet, args, 2, budget)  # warm-up; compiles when compiled
        if vae is not None:
            one = latents[:1] / 0.13025
            decode_flops = count_flops(lambda: vae.decode(one))
            vae.decode(one)
        sync(device)
        row["warmup_seconds"] = time.perf_counter() - started
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        latents = denoise(unet, args, steps, budget)
        if vae is not None:
            for image in latents.split(1):  # one image at a time, as production decodes
                budget.check()
                vae.decode(image / 0.13025)
        sync(device)
        seconds = time.perf_counter() - started
    total_flops = flops * steps + decode_flops * case.batch
    row.update(seconds=seconds, seconds_per_image=seconds / case.batch, it_per_s=steps / seconds,
               flops_per_unet_call=flops, vae_decode_flops=decode_flops or None, mfu=total_flops / seconds / peak,
               max_memory_reserved_gib=torch.cuda.max_memory_reserved() / 2**30 if device.startswith("cuda") else None)
    return row


class _Parts:
    """The parts of a pipeline inference/compile.py prepares."""

    def __init__(self, unet: Any, vae: Any) -> None:
        self.unet, self.vae = unet, vae

    def fuse_qkv_projections(self) -> None:
        for part in (self.unet, self.vae):
            if part is not None:
                part.fuse_qkv_projections()


class Rows:
    """A JSON-lines file: each row written, flushed and synced as soon as it exists."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = path.open("w", encoding="utf-8")
        self.path = path

    def write(self, row: dict[str, Any]) -> None:
        line = json.dumps(row)
        self.handle.write(line + "\n")
        self.handle.flush()
        os.fsync(self.handle.fileno())
        print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny configs on the CPU")
    default_out = Path(os.environ["OUT"]) / "gpu-results.jsonl" if os.environ.get("OUT") else Path("gpu-results.jsonl")
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--only", default="", help="comma-separated compile modes to keep (off,regional,max)")
    args = parser.parse_args()
    budget = Budget(args.budget)
    diffusers.utils.logging.set_verbosity_error()  # the cast-to-half notices, once per model built
    if args.dry_run:
        device, steps, n = "cpu", args.steps or 3, 256
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run with --dry-run to check the script on a CPU", file=sys.stderr)
            return 2
        device, steps, n = "cuda", args.steps or 30, 8192
        compiling.configure_process("regional")  # TF32 and Dynamo's limit, as the bot's wiring does
    rows = Rows(args.out)
    peak = matmul_peak(device, n, warm=0.2 if args.dry_run else 1.0, measure=0.2 if args.dry_run else 1.0)
    rows.write({
        "kind": "environment", "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
        "cuda": torch.version.cuda, "dry_run": args.dry_run, "bf16_matmul_peak_tflops": peak / 1e12,
        "budget_seconds": args.budget,
    })
    keep = {mode for mode in args.only.split(",") if mode}
    for case in cases():
        if keep and case.compile not in keep:
            continue
        try:
            budget.check(0.0 if args.dry_run else case.need)
            row = run_case(case, dry=args.dry_run, device=device, steps=steps, peak=peak, budget=budget)
        except OverBudget as over:
            row = {"kind": "skipped", **case.__dict__, "why": f"time budget ({over})"}
        except Exception as exc:  # e.g. out of memory or a compile failure: the next rows still run
            row = {"kind": "failed", **case.__dict__, "why": f"{type(exc).__name__}: {str(exc)[:300]}"}
        row.pop("need", None)
        rows.write(row)
        if device == "cuda":
            torch.cuda.empty_cache()
    rows.write({"kind": "done", "total_seconds": time.monotonic() - budget.started})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
