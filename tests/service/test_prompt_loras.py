"""`<lora:name:weight>` typed in a prompt: applied like the `lora` option, or refused with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import InvalidOption
from bot.services.imagine_checks import prompt_loras
from bot.services.jobs import ImagineOptions, JobService
from inference.models import ModelRegistry
from tests.lora_files import tiny_loras  # noqa: F401  (fixture)


@pytest.fixture
def service(tiny_models: Path) -> JobService:
    return JobService(None, ModelRegistry.load(tiny_models))  # type: ignore[arg-type]  # prepare_imagine reads no database


def test_tags_leave_the_prompt_and_become_the_jobs_loras(service: JobService, tiny_loras: Path) -> None:  # noqa: F811
    params = service.prepare_imagine(ImagineOptions(prompt="a castle, <lora:sd15/kohya-style:0.6> at dawn",
                                                    lora_dir=tiny_loras, seed=1))
    assert params["prompt"] == "a castle, at dawn"
    assert params["loras"] == [["sd15/kohya-style", 0.6]]
    both = service.prepare_imagine(ImagineOptions(prompt="<lora:sd15/diffusers-style> a castle", lora_dir=tiny_loras,
                                                  lora="sd15/kohya-style", seed=1))
    assert both["prompt"] == "a castle"
    assert both["loras"] == [["sd15/kohya-style", 1.0], ["sd15/diffusers-style", 1.0]]


@pytest.mark.parametrize(("prompt", "model", "needle"), [
    ("a castle <lora:nothing-like-it:1>", None, "`<lora:nothing-like-it:1>` in your prompt"),
    ("a castle <lora:sd15/kohya-style:lots>", None, "the weight must be a number"),
    ("a castle <lora:sd15/kohya-style:0.5>", "tiny-sdxl", "made for SD 1.5 models"),
    ("<lora:sd15/kohya-style> <lora:sd15/kohya-style:0.2> castle", None, "name each LoRA once"),
    ("<lora:sd15/kohya-style>", None, "The prompt is empty"),
])
def test_tags_that_cannot_apply_are_refused(service: JobService, tiny_loras: Path, prompt: str,  # noqa: F811
                                            model: str | None, needle: str) -> None:
    with pytest.raises(InvalidOption, match=needle.replace("(", r"\(")):
        service.prepare_imagine(ImagineOptions(prompt=prompt, model=model, lora_dir=tiny_loras))


def test_tags_are_refused_where_loras_are_off(service: JobService) -> None:
    with pytest.raises(InvalidOption, match="LoRAs are not available here"):
        service.prepare_imagine(ImagineOptions(prompt="a castle <lora:anything:0.8>"))


def test_prompts_without_tags_are_untouched() -> None:
    assert prompt_loras("a  castle, (dawn:1.2) <not a tag>") == ("a  castle, (dawn:1.2) <not a tag>", [])
