#!/usr/bin/env python3
"""LoRA training speed and memory: full-size SD 1.5 and SDXL UNets (random weights) trained at the
/train defaults, with the trainer's own step (inference/training/core.py), one JSON row per measurement.

    python3 bench/train.py [--out train-results.jsonl] [--budget 300] [--steps 40]
    python3 bench/train.py --dry-run      # tiny configs on the CPU: checks the script, not the GPU

Each row: steps per second after warm-up, peak memory allocated and reserved, and the minutes a
run at the default step count takes at that speed (against the goals: an SD 1.5 subject in under
5 minutes, SDXL in under 15, on an H100-class GPU). The VAE and text encoders are not in the
measurement: the trainer encodes the images once and moves them off the GPU before the first step.
Like bench/gpu.py it runs on a bare machine with only torch installed (wheels from bench/vendor/).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402, I001  (gpu first: it brings diffusers from the wheels where missing)

# The full-size and tiny UNet configs, the budget, the row writer and the wheel bootstrap.
from gpu import SD15, SDXL, TINY_SD15, TINY_SDXL, Budget, OverBudget, Rows, sync  # noqa: E402

import diffusers  # noqa: E402  (present, or brought from the wheels by importing gpu)
from diffusers import DDPMScheduler, UNet2DConditionModel  # noqa: E402

from inference.training import core  # noqa: E402
from inference.training.settings import DEFAULTS  # noqa: E402

GOAL_MINUTES = {"sd1": 5.0, "sdxl": 15.0}
# family -> (UNet config, tiny config)
CONFIGS = {"sd1": (SD15, TINY_SD15), "sdxl": (SDXL, TINY_SDXL)}


def cases() -> list[tuple[str, str]]:
    """(family, kind), most important first: the subject LoRAs the goals are about, then styles."""
    return [("sd1", "subject"), ("sdxl", "subject"), ("sd1", "style"), ("sdxl", "style")]


def example(config: dict[str, Any], latent: int) -> core.Example:
    """One cached example as the trainer holds it (on the CPU, fp32)."""
    width = config["cross_attention_dim"]
    if config.get("addition_embed_type") == "text_time":
        pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        side = float(latent * 8)
        return core.Example(torch.randn(1, 4, latent, latent), torch.randn(1, 77, width), torch.randn(1, pooled),
                            torch.tensor([[side, side, 0.0, 0.0, side, side]]))
    return core.Example(torch.randn(1, 4, latent, latent), torch.randn(1, 77, width))


def run_case(family: str, kind: str, *, dry: bool, device: str, steps: int, budget: Budget) -> dict[str, Any]:
    defaults = DEFAULTS[(kind, family)]
    full, tiny = CONFIGS[family]
    config = tiny if dry else full
    resolution = 64 if dry else defaults.resolution
    dtype = core.train_dtype(device)
    row: dict[str, Any] = {"kind": "measurement", "family": family, "lora_kind": kind, "rank": defaults.rank,
                           "resolution": resolution, "dtype": str(dtype).removeprefix("torch."),
                           "default_steps": defaults.steps}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with torch.device(device):
        unet = UNet2DConditionModel(**config)
    if dtype != torch.float32:
        unet.to(dtype)
    params = core.add_lora(unet, rank=defaults.rank, alpha=float(defaults.rank), seed=0)
    if device.startswith("cuda"):
        unet.enable_gradient_checkpointing()
    optimizer = core.make_optimizer(params, lr=defaults.learning_rate, device=device)
    row["optimizer"] = core.optimizer_name(optimizer)
    row["trainable_parameters"] = sum(p.numel() for p in params)
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                              beta_end=0.012)
    sample = example(config, resolution // 8)
    generator = torch.Generator().manual_seed(0)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    unet.train()

    def step() -> float:
        budget.check()
        loss = core.loss_for(unet, scheduler, sample, generator=generator, dtype=dtype, device=device)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    started = time.perf_counter()
    for _ in range(3):
        step()
    sync(device)
    row["warmup_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - started
    steps_per_second = steps / seconds
    minutes = defaults.steps / steps_per_second / 60
    row.update(steps=steps, seconds=seconds, steps_per_s=steps_per_second, minutes_at_default_steps=minutes,
               goal_minutes=GOAL_MINUTES[family] if kind == "subject" else None,
               meets_goal=(minutes < GOAL_MINUTES[family]) if kind == "subject" and not dry else None)
    if device.startswith("cuda"):
        row["max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        row["max_memory_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny configs on the CPU")
    default_out = Path(os.environ["OUT"]) / "train-results.jsonl" if os.environ.get("OUT") else Path("train-results.jsonl")
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for the whole run")
    parser.add_argument("--steps", type=int, default=None, help="measured steps per row (after 3 warm-up steps)")
    parser.add_argument("--only", default="", help="comma-separated families to keep (sd1,sdxl)")
    args = parser.parse_args()
    budget = Budget(args.budget)
    diffusers.utils.logging.set_verbosity_error()
    if args.dry_run:
        device, steps = "cpu", args.steps or 3
    else:
        if not torch.cuda.is_available():
            print("no CUDA device: run with --dry-run to check the script on a CPU", file=sys.stderr)
            return 2
        device, steps = "cuda", args.steps or 40
    rows = Rows(args.out)
    rows.write({
        "kind": "environment", "device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
        "cuda": torch.version.cuda, "dry_run": args.dry_run, "budget_seconds": args.budget,
    })
    keep = {family for family in args.only.split(",") if family}
    for family, kind in cases():
        if keep and family not in keep:
            continue
        try:
            budget.check(0.0 if args.dry_run else 20.0)
            row = run_case(family, kind, dry=args.dry_run, device=device, steps=steps, budget=budget)
        except OverBudget as over:
            row = {"kind": "skipped", "family": family, "lora_kind": kind, "why": f"time budget ({over})"}
        except Exception as exc:  # e.g. out of memory: the next rows still run
            row = {"kind": "failed", "family": family, "lora_kind": kind, "why": f"{type(exc).__name__}: {str(exc)[:300]}"}
        rows.write(row)
        if device == "cuda":
            torch.cuda.empty_cache()
    rows.write({"kind": "done", "total_seconds": time.monotonic() - budget.started})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
