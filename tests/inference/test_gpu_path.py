"""The GPU path tested on CPU: what an engine on a CUDA device does differently (batch invariance
only where it holds), one call for a job's N images, and the LoRA adapter cache."""

from __future__ import annotations

from typing import Any

from torch import nn

from inference import batching
from inference.cache import ModelCache
from inference.engine import Engine
from inference.models import ModelSpec


class CpuBackedCache(ModelCache):
    """Hands out CPU pipelines whatever device is asked for: an engine named for a CUDA device runs
    its real code path on this machine."""

    def get(self, spec: ModelSpec, device: str) -> Any:
        return super().get(spec, "cpu")


def _patched_linears(pipe: Any) -> int:
    return sum(1 for module in pipe.unet.modules() if type(module) is nn.Linear and "forward" in vars(module))


def test_an_engine_on_a_cuda_device_never_applies_the_invariance_patch(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    cuda = Engine(tiny_registry, "cuda:0", cache=CpuBackedCache(), batch_max=4)
    for name in ("tiny-sd15", "tiny-sdxl", "tiny-sdxl-turbo"):
        pipe = cuda.pipeline(name)
        assert not batching.is_batch_invariant(pipe)
        assert _patched_linears(pipe) == 0
        assert "forward" not in vars(pipe.unet)  # no one-sample padding either
    # The library call itself refuses other devices, whoever calls it.
    batching.make_batch_invariant(pipe, "cuda")
    assert not batching.is_batch_invariant(pipe) and _patched_linears(pipe) == 0


def test_a_cpu_engine_that_batches_applies_it_and_one_that_does_not_batch_does_not(tiny_registry) -> None:  # type: ignore[no-untyped-def]
    batched = Engine(tiny_registry, "cpu", batch_max=4).pipeline("tiny-sd15")
    assert batching.is_batch_invariant(batched) and _patched_linears(batched) > 0
    lone = Engine(tiny_registry, "cpu", batch_max=1).pipeline("tiny-sd15")
    assert not batching.is_batch_invariant(lone) and _patched_linears(lone) == 0
