"""/imagine quality: fast routes to the model's distilled sibling, else halves the steps; and the
built-in registry loads half-precision variant files where the repos have them."""

from __future__ import annotations

import pytest

from bot.errors import InvalidOption
from bot.services.jobs import ImagineOptions, JobService
from inference.models import ModelRegistry


@pytest.fixture
def service(tiny_models) -> JobService:  # type: ignore[no-untyped-def]
    return JobService(None, ModelRegistry.load(tiny_models))  # type: ignore[arg-type]


def _params(service: JobService, **options) -> dict:  # type: ignore[no-untyped-def]
    return service.prepare_imagine(ImagineOptions(prompt="a lighthouse", **options))


def test_fast_runs_the_distilled_sibling_at_its_own_steps_and_guidance(service: JobService) -> None:
    params = _params(service, model="tiny-sdxl", quality="fast", aspect="16:9")
    assert (params["model"], params["steps"], params["guidance"], params["quality"]) == \
        ("tiny-sdxl-lightning", 4, 0.0, "fast")
    assert params["scheduler"] == "euler-trailing"
    standard = _params(service, model="tiny-sdxl", quality="standard")
    assert standard["model"] == "tiny-sdxl" and "quality" not in standard


def test_fast_without_a_sibling_halves_the_steps(service: JobService) -> None:
    spec = service.registry.get("tiny-sd15")
    params = _params(service, model="tiny-sd15", quality="fast")
    assert params["model"] == "tiny-sd15" and params["steps"] == max(4, (spec.steps + 1) // 2)


def test_fast_refuses_explicit_steps_and_unknown_qualities(service: JobService) -> None:
    with pytest.raises(InvalidOption, match="picks its own steps"):
        _params(service, model="tiny-sdxl", quality="fast", steps=20)
    with pytest.raises(InvalidOption, match="Unknown quality 'ultra'"):
        _params(service, quality="ultra")


def test_builtin_registry_uses_fp16_variants_and_names_sdxls_fast_sibling() -> None:
    registry = ModelRegistry.load(None)
    for name in ("sd15", "sdxl", "sdxl-lightning", "sdxl-turbo", "sd21"):
        assert registry.get(name).extra.get("variant") == "fp16", name
    assert registry.get(str(registry.get("sdxl").extra["fast"])).few_step
