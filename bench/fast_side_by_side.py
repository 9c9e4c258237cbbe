"""The README's side-by-side of `/imagine quality: standard` and `quality: fast`, made with the tiny
random-weight models (so it shows the mechanics and the time saved, not real image quality).

    .venv/bin/python bench/fast_side_by_side.py [--out docs/fast-mode-tiny.png]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image, ImageDraw

from bot.services.jobs import ImagineOptions, JobService
from inference.engine import Engine
from inference.models import ModelRegistry
from inference.testing import make_tiny
from inference.types import GenerationRequest


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/fast-mode-tiny.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry.load(make_tiny(Path(folder)))
        service = JobService(None, registry)  # type: ignore[arg-type]
        engine = Engine(registry, "cpu", batch_max=1)
        tiles = []
        for quality in ("standard", "fast"):
            params = service.prepare_imagine(ImagineOptions(prompt="a lighthouse at dusk", model="tiny-sdxl",
                                                            seed=7, quality=quality))
            request = GenerationRequest(job_id=1, **{k: v for k, v in params.items()
                                                      if k in GenerationRequest.__dataclass_fields__})
            engine.run(request)  # loads the model; the second run is timed
            started = time.perf_counter()
            result = engine.run(request)
            seconds = time.perf_counter() - started
            image = Image.open(io.BytesIO(result.images[0].png)).convert("RGB")
            label = f"{quality}: {params['model']}, {params['steps']} steps, CFG {params['guidance']:g}, {seconds:.2f} s"
            tiles.append((image, label))
            print(label)
    width = sum(image.width for image, _ in tiles) + 10
    canvas = Image.new("RGB", (width, tiles[0][0].height + 40), "white")
    x = 0
    draw = ImageDraw.Draw(canvas)
    for image, label in tiles:
        canvas.paste(image, (x, 40))
        draw.text((x + 4, 4), label, fill="black")
        draw.text((x + 4, 20), "tiny random-weight models", fill="gray")
        x += image.width + 10
    args.out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
