"""Memory budgets of the model cache, pins, and recovery from device out-of-memory errors (tiny models)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from inference import memory
from inference.cache import ModelCache
from inference.engine import Engine
from inference.models import ModelRegistry
from inference.runners import txt2img
from inference.types import GenerationRequest, OutOfMemory

THREE = ("tiny-sd15", "tiny-sd2", "tiny-sdxl-turbo")  # three models with weights of their own


def _request(model: str, job_id: int = 1, **changes: Any) -> GenerationRequest:
    values: dict[str, Any] = {"job_id": job_id, "model": model, "prompt": "a red kite", "width": 64, "height": 64,
                              "steps": 1, "seed": 3, **changes}
    return GenerationRequest(**values)


@pytest.fixture(scope="module")
def sizes(tiny_registry: ModelRegistry) -> dict[str, int]:
    cache = ModelCache()
    return {name: memory.distinct_bytes(memory.modules_of(cache.get(tiny_registry.get(name), "cpu")))
            for name in THREE}


def _budget_for_two(sizes: dict[str, int]) -> int:
    two_largest = sum(sorted(sizes.values())[1:])
    assert two_largest < sum(sizes.values())
    return two_largest


def _where(cache: ModelCache) -> dict[str, str]:
    return {resident.name: resident.where for resident in cache.residents()}


def test_three_models_with_a_budget_for_two_move_the_least_recently_used(tiny_registry: ModelRegistry,
                                                                        sizes: dict[str, int]) -> None:
    cache = ModelCache(vram_budget=_budget_for_two(sizes), ram_budget=10**12)
    engine = Engine(tiny_registry, "cpu", cache=cache, batch_max=1)
    for job_id, name in enumerate(THREE, 1):
        assert engine.run(_request(name, job_id)).images
        assert cache.device_bytes("cpu") <= cache.budget("cpu")
    assert _where(cache) == {"tiny-sd15": "ram", "tiny-sd2": "device", "tiny-sdxl-turbo": "device"}
    # The first model comes back from RAM (no reload); the least recently used one (sd2) makes room.
    before = cache._pipelines[("tiny-sd15", "cpu")]
    assert engine.run(_request("tiny-sd15", 4)).images
    assert cache._pipelines[("tiny-sd15", "cpu")] is before
    assert _where(cache) == {"tiny-sd15": "device", "tiny-sd2": "ram", "tiny-sdxl-turbo": "device"}
    assert cache.moves == 2


def test_parked_models_over_the_ram_budget_are_dropped_oldest_first(tiny_registry: ModelRegistry,
                                                                   sizes: dict[str, int]) -> None:
    smallest = min(sizes.values())
    cache = ModelCache(vram_budget=max(sizes.values()), ram_budget=max(sizes.values()))
    for name in THREE:
        cache.get(tiny_registry.get(name), "cpu")
    # One model fits on the device and one in RAM: the oldest went out altogether.
    assert _where(cache) == {"tiny-sd2": "ram", "tiny-sdxl-turbo": "device"}
    assert cache.ram_bytes() >= smallest


def test_pinned_models_are_never_moved(tiny_registry: ModelRegistry, sizes: dict[str, int],
                                       caplog: pytest.LogCaptureFixture) -> None:
    cache = ModelCache(vram_budget=_budget_for_two(sizes), ram_budget=10**12)
    with cache.pinned("cpu", ["tiny-sd15"]):
        for name in THREE:
            cache.get(tiny_registry.get(name), "cpu")
        # sd15 is the least recently used, but a job holds it: sd2 moved instead.
        assert _where(cache) == {"tiny-sd15": "device", "tiny-sd2": "ram", "tiny-sdxl-turbo": "device"}
        with cache.pinned("cpu", THREE), caplog.at_level("WARNING"):
            cache.get(tiny_registry.get("tiny-sd2"), "cpu")  # all three in use: over budget, nothing moves
        assert set(_where(cache).values()) == {"device"}
        assert "every one is in use" in caplog.text
        assert cache.free("cpu") == 2  # out of memory: everything but the running job's model moves
        assert _where(cache)["tiny-sd15"] == "device"


def test_shared_modules_are_counted_once(tiny_registry: ModelRegistry) -> None:
    cache = ModelCache()
    cache.get(tiny_registry.get("tiny-sdxl"), "cpu")
    alone = cache.device_bytes("cpu")
    cache.get(tiny_registry.get("tiny-animagine"), "cpu")  # the same folder: every module shared
    assert cache.device_bytes("cpu") == alone
    assert [r.bytes for r in cache.residents()] == [alone, alone]


class _OutOfMemoryRunner:
    """The text-to-image runner, failing with CUDA's out-of-memory error its first ``failures`` calls."""

    def __init__(self, failures: int, engine: Engine, run: Any) -> None:
        self.failures = failures
        self.engine = engine
        self.run = run
        self.calls = 0
        self.seen: list[dict[str, str]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.seen.append(_where(self.engine.cache))
        if self.calls <= self.failures:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.run(*args, **kwargs)


@pytest.fixture
def oom_engine(tiny_registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def build(failures: int) -> tuple[Engine, _OutOfMemoryRunner]:
        engine = Engine(tiny_registry, "cpu", cache=ModelCache(), batch_max=1)
        runner = _OutOfMemoryRunner(failures, engine, txt2img.run)
        monkeypatch.setattr(txt2img, "run", runner)
        return engine, runner

    return build


def test_out_of_memory_frees_idle_models_and_retries(oom_engine) -> None:  # type: ignore[no-untyped-def]
    engine, runner = oom_engine(1)
    engine.pipeline("tiny-sdxl-turbo")  # idle: it makes room
    result = engine.run(_request("tiny-sd15"))
    assert result.images and runner.calls == 2
    assert runner.seen[1] == {"tiny-sdxl-turbo": "ram", "tiny-sd15": "device"}


def test_out_of_memory_twice_runs_with_cpu_offload(oom_engine) -> None:  # type: ignore[no-untyped-def]
    engine, runner = oom_engine(2)
    assert engine.run(_request("tiny-sd15")).images and runner.calls == 3
    assert runner.seen[2] == {"tiny-sd15": "offload"}
    assert _where(engine.cache) == {"tiny-sd15": "ram"}  # whole again, moved back by its next job
    assert engine.run(_request("tiny-sd15", 2)).images
    assert _where(engine.cache) == {"tiny-sd15": "device"}


def test_a_job_that_never_fits_raises_out_of_memory(oom_engine) -> None:  # type: ignore[no-untyped-def]
    engine, runner = oom_engine(99)
    with pytest.raises(OutOfMemory, match="tiny-sd15 at 64x64"):
        engine.run(_request("tiny-sd15"))
    assert runner.calls == 3


def test_cache_is_within_budget_after_every_load(tiny_models: Path, sizes: dict[str, int]) -> None:
    registry = ModelRegistry.load(tiny_models)
    cache = ModelCache(vram_budget=min(sizes.values()), ram_budget=0)
    for name in (*THREE, *THREE):
        cache.get(registry.get(name), "cpu")
        assert len(cache.loaded()) == 1 and cache.ram_bytes() == 0


def test_room_is_made_before_reloading_a_model_of_known_size(tiny_registry: ModelRegistry,
                                                             sizes: dict[str, int]) -> None:
    """A model loaded before is known in size: the device never holds it and its evictee at once."""
    cache = ModelCache(vram_budget=max(sizes.values()), ram_budget=0)
    on_device_at_load: list[int] = []
    load = cache._load

    def recording(spec: Any, device: str) -> Any:
        on_device_at_load.append(cache.device_bytes(device))
        return load(spec, device)

    cache._load = recording  # type: ignore[method-assign]
    for name in ("tiny-sd15", "tiny-sdxl-turbo", "tiny-sd15"):
        cache.get(tiny_registry.get(name), "cpu")
    assert on_device_at_load[2] == 0  # turbo went out before sd15 came back in
