"""GPU throughput of the full-size UNets with random weights: SD 1.5 and SDXL, bf16 + SDPA.

    python bench/gpu.py [--out bench/gpu-results.json] [--no-compile] [--budget 450]
    python bench/gpu.py --dry-run        # tiny configs on the CPU: checks the script, not the GPU

For the device machine (no weights needed: the architectures come from configs, see
../shared/notes/tiny-models.md). Measures the denoising loop, where the time goes: 30 UNet steps with
classifier-free guidance (the UNet sees 2 x batch), SDXL at 1024x1024 (128x128 latents) and SD 1.5 at
512x512 (64x64), at batch 1 and 4, eager and then with torch.compile. Reports seconds per image,
it/s (denoising steps per second for the whole batch), model FLOPs utilisation (FLOPs of one UNet
call counted by torch's FlopCounterMode, against a bf16 matmul peak measured here first) and peak
VRAM. Text encoders and the VAE are left out. Compiled runs stop being started once --budget
seconds have passed (default 450, so the whole script stays under 8 minutes); skipped ones say so
in the JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import AttnProcessor2_0
from torch.utils.flop_counter import FlopCounterMode

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


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(device: str, dtype: torch.dtype, n: int, iters: int) -> float:
    """Dense bf16 matmul FLOP/s measured on this device: the denominator of MFU."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - started)


def build(config: dict[str, Any], device: str, dtype: torch.dtype) -> UNet2DConditionModel:
    with torch.device(device):
        unet = UNet2DConditionModel(**config)
    unet = unet.to(dtype).eval().requires_grad_(False)
    unet.set_attn_processor(AttnProcessor2_0())  # scaled_dot_product_attention
    return unet


def inputs(config: dict[str, Any], batch: int, latent: int, device: str, dtype: torch.dtype) -> dict[str, Any]:
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


def denoise(unet: Any, args: dict[str, Any], steps: int) -> torch.Tensor:
    latents = args["sample"]
    for step in range(steps):
        t = torch.full((latents.shape[0],), 999 - step * (1000 // max(steps, 1)), device=latents.device)
        noise = unet(**{**args, "sample": latents}, timestep=t, return_dict=False)[0]
        uncond, cond = noise.chunk(2)
        guided = uncond + 7.0 * (cond - uncond)
        latents = latents - 0.01 * torch.cat([guided, guided])  # the scheduler's cost is negligible
    return latents


def flops_per_call(unet: UNet2DConditionModel, args: dict[str, Any]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        unet(**args, timestep=torch.tensor([999] * args["sample"].shape[0], device=args["sample"].device))
    return int(counter.get_total_flops())


def measure(name: str, unet: Any, config: dict[str, Any], *, batch: int, latent: int, steps: int, device: str,
            dtype: torch.dtype, peak: float, flops: int, compiled: bool) -> dict[str, Any]:
    args = inputs(config, batch, latent, device, dtype)
    with torch.no_grad():
        started = time.perf_counter()
        denoise(unet, args, 3)  # warm-up; compiles when compiled
        sync(device)
        warmup = time.perf_counter() - started
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        denoise(unet, args, steps)
        sync(device)
        seconds = time.perf_counter() - started
    peak_vram = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {
        "model": name, "resolution": latent * 8, "steps": steps, "batch": batch, "compile": compiled,
        "seconds_per_image": seconds / batch, "it_per_s": steps / seconds, "seconds": seconds,
        "flops_per_unet_call": flops, "mfu": flops * steps / seconds / peak, "peak_vram_gib": peak_vram,
        "warmup_seconds": warmup,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny configs on the CPU")
    parser.add_argument("--out", type=Path, default=Path("bench/gpu-results.json"))
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--budget", type=float, default=450.0, help="seconds after which no compiled run starts")
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    begun = time.perf_counter()
    dtype = torch.bfloat16
    if args.dry_run:
        device, steps, n, iters = "cpu", args.steps or 3, 256, 5
        models = [("sdxl", TINY_SDXL, 8), ("sd15", TINY_SD15, 8)]
        backend = "eager"  # Dynamo only: inductor on a CPU would time the C++ compiler
    else:
        if not torch.cuda.is_available():
            raise SystemExit("no CUDA device: run with --dry-run to check the script on a CPU")
        device, steps, n, iters = "cuda", args.steps or 30, 8192, 50
        models = [("sdxl", SDXL, 128), ("sd15", SD15, 64)]
        backend = "inductor"
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = matmul_peak(device, dtype, n, iters)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "dtype": "bfloat16", "attention": "SDPA", "dry_run": args.dry_run,
        "bf16_matmul_peak_tflops": peak / 1e12, "results": [], "skipped": [],
    }
    print(f"{report['device']}: bf16 matmul peak {peak / 1e12:.1f} TFLOP/s")
    built = {}
    for name, config, latent in models:
        unet = build(config, device, dtype)
        flops = {b: flops_per_call(unet, inputs(config, b, latent, device, dtype)) for b in (1, 4)}
        built[name] = (unet, config, latent, flops)
        for batch in (1, 4):
            row = measure(name, unet, config, batch=batch, latent=latent, steps=steps, device=device, dtype=dtype,
                          peak=peak, flops=flops[batch], compiled=False)
            report["results"].append(row)
            _print(row)
    if not args.no_compile:
        torch._dynamo.config.automatic_dynamic_shapes = False  # batch 1 and 4 get a static graph each
        for name, (unet, config, latent, flops) in built.items():
            compiled = torch.compile(unet, backend=backend, fullgraph=False)
            for batch in (1, 4):
                if time.perf_counter() - begun > args.budget:
                    report["skipped"].append({"model": name, "batch": batch, "compile": True, "why": "time budget"})
                    print(f"{name} batch {batch} compiled: skipped (time budget)")
                    continue
                row = measure(name, compiled, config, batch=batch, latent=latent, steps=steps, device=device,
                              dtype=dtype, peak=peak, flops=flops[batch], compiled=True)
                report["results"].append(row)
                _print(row)
        for row in report["results"]:
            if row["compile"]:
                eager = next(r for r in report["results"]
                             if not r["compile"] and r["model"] == row["model"] and r["batch"] == row["batch"])
                row["speedup_vs_eager"] = eager["seconds"] / row["seconds"]
    report["total_seconds"] = time.perf_counter() - begun
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out} ({report['total_seconds']:.0f} s in all)")


def _print(row: dict[str, Any]) -> None:
    vram = f"{row['peak_vram_gib']:.1f} GiB" if row["peak_vram_gib"] is not None else "-"
    print(f"{row['model']:>5} {row['resolution']}px batch {row['batch']} {'compiled' if row['compile'] else 'eager   '}: "
          f"{row['seconds_per_image']:.3f} s/image, {row['it_per_s']:.2f} it/s, MFU {row['mfu'] * 100:.1f}%, "
          f"peak VRAM {vram} (warm-up {row['warmup_seconds']:.1f} s)")


if __name__ == "__main__":
    main()
