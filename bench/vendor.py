"""Fetch what bench/gpu.py needs besides torch into bench/vendor/ (ignored by git), for a bare GPU
machine that has torch but no diffusers and no network.

    .venv/bin/python bench/vendor.py [--python 3.10 3.11 3.12]

Runs here (package registries reachable) with pip's ordinary client: wheels of diffusers and its
dependencies at this checkout's versions, for each Python version named, Linux x86-64. gpu.py puts
them behind the machine's own packages on ``sys.path`` (``bench/vendor/site-<tag>/``), so what is
installed there wins and only what is missing comes from here.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

VENDOR = Path(__file__).resolve().parent / "vendor" / "wheels"
# diffusers and what it imports; Pillow only comes into play where the machine lacks it. numpy is
# left out unless asked for (--numpy): machines with torch have it, and its wheels are large.
PACKAGES = ("diffusers", "huggingface_hub", "safetensors", "regex", "filelock", "pillow",
            "importlib_metadata", "zipp", "requests", "urllib3", "idna", "certifi", "charset_normalizer",
            "packaging", "pyyaml", "tqdm", "fsspec", "typing_extensions", "httpx", "httpcore", "anyio",
            "sniffio", "h11", "hf_xet",
            # bench/train.py: the trainer's adapter (peft) and what peft imports
            "peft", "transformers", "tokenizers", "accelerate", "psutil")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")


def pinned(name: str) -> str:
    """The package at the version this checkout runs, where it is installed here."""
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return name


def download(spec: str, version: str) -> bool:
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                           "--python-version", version, *platforms, "-d", str(VENDOR), "--quiet", spec],
                          capture_output=True, text=True)
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", nargs="+", default=["3.10", "3.11", "3.12"])
    parser.add_argument("--numpy", action="store_true", help="numpy too (~16 MiB a Python version)")
    args = parser.parse_args()
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name in (*PACKAGES, *(("numpy",) if args.numpy else ())):
        for version in args.python:
            # The checkout's version where the registry has it for that Python, else the newest that fits.
            if not (download(pinned(name), version) or download(name, version)):
                print(f"{name}: no wheel for Python {version}")
            if any(wheel.name.endswith("-none-any.whl") for wheel in VENDOR.glob(f"{name}-*.whl")):
                break  # pure Python: one wheel serves every version
    wheels = sorted(VENDOR.glob("*.whl"))
    size = sum(wheel.stat().st_size for wheel in wheels) / 2**20
    print(f"{len(wheels)} wheels, {size:.1f} MiB in {VENDOR}")


if __name__ == "__main__":
    main()
