"""bench/serve.py: the model-aware order keeps a simulated GPU generating (>= 90% of the ideal
images per GPU-minute) while the fairness bound of bench/fairness.py holds; FIFO breaks that bound."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _serve():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "bench" / "serve.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_serve"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_model_aware_order_reaches_90_percent_of_ideal_and_stays_fair() -> None:
    serve = _serve()
    jobs = serve.arrivals(1000, 1.0, 0.95, random.Random(7))
    fair = serve.simulate(jobs, "fair", 24.0)
    aware = serve.simulate(jobs, "model-aware", 24.0)
    assert aware["per_gpu_minute"] >= 0.9 * aware["ideal"]
    assert aware["reloads"] < fair["reloads"] / 3
    assert serve.fairness_check("model-aware", 24.0) <= 2
    assert serve.fairness_check("fair", 24.0) <= 2
    assert serve.fairness_check("fifo", 24.0) > 2
