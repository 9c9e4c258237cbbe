"""Dynamic batching: jobs of different members in one pipeline call give, bit for bit, the images
they give alone (inference/batching.py explains how), on the engine's real tiny pipelines."""

from __future__ import annotations

import pytest

from inference.engine import Engine
from inference.models import ModelRegistry
from inference.types import GenerationRequest, GenerationResult, JobCancelled

LONG = ", ".join(f"detail number {n}" for n in range(40))  # past 77 tokens: encoded in chunks


def _request(job_id: int, model: str, prompt: str, seed: int, *, count: int = 1, negative: str = "",
             steps: int = 3, size: int = 64, guidance: float = 7.0) -> GenerationRequest:
    return GenerationRequest(job_id=job_id, model=model, prompt=prompt, negative_prompt=negative, width=size,
                             height=size, steps=steps, guidance=guidance, seed=seed, count=count)


def _pngs(result: GenerationResult | BaseException) -> list[bytes]:
    assert isinstance(result, GenerationResult), result
    return [image.png for image in result.images]


@pytest.fixture(scope="module")
def engine(tiny_models) -> Engine:  # type: ignore[no-untyped-def]
    return Engine(ModelRegistry.load(tiny_models), "cpu")


@pytest.mark.parametrize(("model", "guidance"), [("tiny-sd15", 7.0), ("tiny-sdxl", 6.0), ("tiny-sdxl-turbo", 0.0)])
def test_batched_images_are_bit_identical_to_lone_runs(engine: Engine, model: str, guidance: float) -> None:
    jobs = [
        _request(1, model, "a red fox in snow", 11, guidance=guidance),
        _request(2, model, "a lighthouse at dusk", 22, count=2, negative="blurry", guidance=guidance),
        _request(3, model, "a (bright:1.4) [dark] forest", 33, guidance=guidance),
        _request(4, model, LONG, 44, guidance=guidance),
    ]
    alone = [_pngs(engine.run(job)) for job in jobs]
    batched = engine.run_batch(jobs)
    assert [_pngs(result) for result in batched] == alone
    # The same seeds in another order and company: still each job's own images.
    again = engine.run_batch([jobs[2], jobs[0]])
    assert [_pngs(result) for result in again] == [alone[2], alone[0]]


def test_a_bad_job_fails_alone_and_a_cancelled_one_is_dropped(engine: Engine) -> None:
    good = _request(1, "tiny-sd15", "a red fox", 5)
    bad = _request(2, "tiny-sd15", "   ", 6)  # empty prompt: refused by the engine's checks
    dropped = _request(3, "tiny-sd15", "a cat", 7)
    steps: dict[int, list[int]] = {}
    results = engine.run_batch([good, bad, dropped], on_step=lambda job, step, total: steps.setdefault(job, []).append(step),
                               is_cancelled=lambda job_id: job_id == 3)
    assert _pngs(results[0]) == _pngs(engine.run(good))
    assert isinstance(results[1], ValueError) and "empty" in str(results[1])
    assert isinstance(results[2], JobCancelled)
    assert steps[1] == [1, 2, 3] and steps[3] == [1, 2, 3] and 2 not in steps


def test_incompatible_jobs_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="cannot share"):
        engine.run_batch([_request(1, "tiny-sd15", "a", 1), _request(2, "tiny-sd15", "b", 2, steps=4)])
