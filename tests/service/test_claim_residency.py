"""What a device tells the claim: the models it has loaded (the claim's model-aware window) and,
before a load, what the queue wants (which model makes room)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.services.jobs import ImagineOptions, JobService, Origin
from db import migrate
from db.engine import create_engine, create_sessionmaker
from inference.models import ModelRegistry
from inference.pool import InferencePool

TOML = """
default = "a"
packaged = false
[models.a]
kind = "sd15"
source = "/nonexistent"
[models.b]
kind = "sd15"
source = "/nonexistent"
"""


@pytest.fixture
async def service(tmp_path):  # type: ignore[no-untyped-def]
    (tmp_path / "models.toml").write_text(TOML)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    await migrate.upgrade(engine)
    yield JobService(create_sessionmaker(engine), ModelRegistry.load(tmp_path / "models.toml"), max_queued_per_user=10)
    await engine.dispose()


async def _submit(service: JobService, user: int, model: str, count: int = 1) -> int:
    params = service.prepare_imagine(ImagineOptions(prompt="a lighthouse", model=model, seed=1, count=count))
    return (await service.submit(command="imagine", params=params, origin=Origin(user_id=user, guild_id=1))).job.id


async def test_the_claim_prefers_the_loaded_model_and_reports_demand_before_a_load(service: JobService) -> None:
    loaded: set[str] = {"a"}
    told: list[tuple[str, dict[str, int]]] = []
    service.resident = lambda worker: loaded
    service.demand = lambda worker, queued: told.append((worker, queued))
    earlier = await _submit(service, 1, "b")
    on_a = await _submit(service, 2, "a", count=2)  # twice the work: not a tie, within the window
    await _submit(service, 3, "b")
    first = await service.claim("main/cuda:0#0")
    assert first is not None and first.job_id == on_a and told == []  # no load, nothing to tell
    second = await service.claim("main/cuda:0#0")
    assert second is not None and second.job_id == earlier
    assert told == [("main/cuda:0#0", {"b": 1})]  # the load of "b" is told what still waits


async def test_the_embedded_pool_says_what_its_device_holds_and_passes_demand_to_its_cache(service: JobService) -> None:
    cache = SimpleNamespace(on_device=lambda device: {"a"} if device == "cuda:0" else set(), queued={})
    pool = InferencePool(service, lambda device: SimpleNamespace(cache=cache), ["cuda:0"])
    worker = pool.workers[0].name
    assert pool.resident_models(worker) == set()  # no engine yet, nothing loaded
    await pool.warmup([])
    assert pool.resident_models(worker) == {"a"}
    pool.note_demand(worker, {"b": 2})
    assert cache.queued == {"b": 2}
    await pool.stop()
    pool.note_demand("elsewhere/cuda:1#0", {"a": 9})  # another process's worker: not this cache
    assert cache.queued == {"b": 2}
    await pool.stop()
