"""Each failure class has its own member sentence and log level (bot/failures.py)."""

from __future__ import annotations

import logging

import pytest

from bot import failures
from bot.jobs import Withheld, user_message_for
from inference import hub
from inference.types import JobCancelled


class OutOfMemoryError(RuntimeError):
    """Named as torch.cuda's is: the table matches it by name (the bot does not import torch)."""


class ModelLoadError(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot load model {name!r}: /models/x: header too large")
        self.name = name


@pytest.mark.parametrize(("error", "kind", "level", "says"), [
    (hub.GatedModel("sd3", "org/sd3", "refused"), "gated", logging.ERROR, "HF_TOKEN"),
    (hub.HubUnreachable("sdxl", "org/sdxl", "down"), "network", logging.WARNING, "could not be reached"),
    (hub.ModelUnavailable("sdxl", "org/sdxl", "the disk of the model cache is full"), "downloading", logging.ERROR,
     "the disk of the model cache is full"),
    (OutOfMemoryError("CUDA out of memory"), "out of memory", logging.ERROR, "ran out of memory"),
    (TimeoutError(), "timed out", logging.WARNING, "took too long"),
    (ModelLoadError("pony"), "bad checkpoint", logging.ERROR, "pony could not be loaded"),
    (JobCancelled(1, 3), "cancelled", logging.INFO, "Canceled at step 3."),
    (Withheld("Not posted here."), "withheld", logging.INFO, "Not posted here."),
    (KeyError("x"), "unexpected", logging.ERROR, "The job failed (KeyError)"),
])
def test_each_failure_class_has_its_sentence_and_level(error: BaseException, kind: str, level: int, says: str) -> None:
    row = failures.classify(error)
    assert (row.kind, row.level) == (kind, level)
    assert says in user_message_for(error) and "Traceback" not in user_message_for(error)


def test_download_failures_say_the_credits_were_refunded() -> None:
    for error in (hub.GatedModel("a", "o/a", "r"), hub.HubUnreachable("a", "o/a", "r"), hub.ModelUnavailable("a", "o/a", "r")):
        assert user_message_for(error).endswith("The job's credits were refunded.")


def test_a_gated_model_names_its_licence_page() -> None:
    message = user_message_for(hub.GatedModel("sd3-medium", "stabilityai/stable-diffusion-3-medium-diffusers", "r"))
    assert "https://huggingface.co/stabilityai/stable-diffusion-3-medium-diffusers and set" not in message
    assert "accept its licence at https://huggingface.co/stabilityai/stable-diffusion-3-medium-diffusers" in message
