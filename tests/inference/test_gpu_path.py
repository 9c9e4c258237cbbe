"""The GPU path tested on CPU: what an engine on a CUDA device does differently (batch invariance
only where it holds), one call for a job's N images, and the LoRA adapter cache."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from torch import nn

from inference import batching
from inference.cache import ModelCache
from inference.engine import Engine
from inference.models import ModelSpec
from inference.types import GenerationRequest
from tests.lora_files import tiny_loras  # noqa: F401  (fixture)


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


def _count_calls(module: Any) -> list[int]:
    calls: list[int] = []
    module.register_forward_hook(lambda _m, args, _out: calls.append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize(("model", "guidance"), [("tiny-sd15", 7.0), ("tiny-sdxl-turbo", 0.0)])
def test_count_n_is_one_call_with_the_images_of_n_separate_calls(tiny_registry, model: str,  # type: ignore[no-untyped-def]
                                                                 guidance: float) -> None:
    engine = Engine(tiny_registry, "cpu", batch_max=4)
    pipe = engine.pipeline(model)
    encoder_calls, unet_calls = _count_calls(pipe.text_encoder), _count_calls(pipe.unet)
    job = GenerationRequest(job_id=1, model=model, prompt="a red fox in snow", negative_prompt="blurry",
                            width=64, height=64, steps=2, guidance=guidance, seed=40, count=3)
    together = engine.run(job)
    # One pipeline call: the prompt (and the negative, with guidance) encoded once, each UNet
    # step run on all three latents at once.
    assert len(encoder_calls) == (2 if guidance > 1 else 1)
    assert len(unet_calls) == 2 and set(unet_calls) == {3 * (2 if guidance > 1 else 1)}
    alone = [engine.run(replace(job, seed=40 + i, count=1)).images[0].png for i in range(3)]
    assert [image.png for image in together.images] == alone


def test_adapter_cache_keeps_recent_loras_and_jobs_after_them_are_untouched(tiny_registry, tiny_loras) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    engine = Engine(tiny_registry, "cpu", lora_dir=tiny_loras, lora_cache=2)
    fresh = Engine(tiny_registry, "cpu", lora_dir=tiny_loras, lora_cache=0)  # never keeps anything

    def job(*loras: tuple[str, float]) -> GenerationRequest:
        return GenerationRequest(job_id=1, model="tiny-sd15", prompt="a lighthouse", negative_prompt="blurry",
                                 width=64, height=64, steps=2, seed=7, loras=list(loras))

    def png(on: Engine, request: GenerationRequest) -> bytes:
        return on.run(request).images[0].png

    plain = png(fresh, job())
    a, b = ("sd15/kohya-style", 1.0), ("sd15/diffusers-style", 0.6)
    expected = {name: png(fresh, job(item)) for name, item in (("a", a), ("b", b))}
    assert png(engine, job(a)) == expected["a"]
    assert png(engine, job()) == plain  # the job after a LoRA job: as if it never saw it
    assert png(engine, job(b)) == expected["b"]
    assert png(engine, job(a)) == expected["a"]  # switched back on, not read again
    assert png(engine, job(a, b)) == png(fresh, job(a, b))
    assert engine.adapters.loads == 2
    pipe = engine.pipeline("tiny-sd15")
    # A third LoRA pushes out the least recently used one (bounded), and results stay right.
    third = tiny_loras / "sd15" / "copy.safetensors"
    third.write_bytes((tiny_loras / "sd15" / "kohya-style.safetensors").read_bytes())
    try:
        engine.loras.resolve("sd15/copy")  # type: ignore[union-attr]
        assert png(engine, job(("sd15/copy", 0.5))) == png(fresh, job(("sd15/copy", 0.5)))
        assert [path.rsplit("/", 1)[-1] for path in engine.adapters.loaded(pipe)] == \
            ["diffusers-style.safetensors", "copy.safetensors"]
        assert png(engine, job()) == plain
    finally:
        third.unlink()
