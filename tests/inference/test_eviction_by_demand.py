"""Making room on a device moves the loaded model the fewest queued jobs want (tiny models)."""

from __future__ import annotations

from inference.cache import ModelCache
from inference.models import ModelRegistry
from tests.inference.test_budget import THREE, _budget_for_two, _where, sizes  # noqa: F401  (fixture)


def test_the_model_queued_jobs_want_stays_over_a_more_recently_used_one(tiny_registry: ModelRegistry,
                                                                      sizes: dict[str, int]) -> None:  # noqa: F811
    cache = ModelCache(vram_budget=_budget_for_two(sizes), ram_budget=10**12)
    for name in THREE[:2]:
        cache.get(tiny_registry.get(name), "cpu")
    # sd15 is the least recently used, but three queued jobs want it and none wants sd2.
    cache.queued = {"tiny-sd15": 3, "tiny-sdxl-turbo": 1}
    cache.get(tiny_registry.get(THREE[2]), "cpu")
    assert _where(cache) == {"tiny-sd15": "device", "tiny-sd2": "ram", "tiny-sdxl-turbo": "device"}
    # Equal demand: the least recently used goes, as without a queue.
    cache.queued = {}
    cache.get(tiny_registry.get("tiny-sd2"), "cpu")
    assert _where(cache) == {"tiny-sd15": "ram", "tiny-sd2": "device", "tiny-sdxl-turbo": "device"}
