"""Each failure class has its own member sentence and log level (bot/services/failures.py); the raw exception text
(paths, internals) reaches only the log."""

from __future__ import annotations

import logging

import pytest

from bot.services import failures
from bot.services.failures import member_message
from bot.services.pool_events import Withheld
from inference import hub
from inference.models import RequestRefused
from inference.remote_queue import RemoteJobError, remote_error
from inference.types import JobCancelled, JobTimedOut

SECRET_PATH = "/srv/atelier/private/models/sd15/unet/diffusion_pytorch_model.safetensors"


class OutOfMemoryError(RuntimeError):
    """Named as torch.cuda's is: the table matches it by name (the bot does not import torch)."""


class ModelLoadError(RuntimeError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot load model {name!r}: {SECRET_PATH}: header too large")
        self.name = name


@pytest.mark.parametrize(("error", "kind", "level", "says"), [
    (hub.GatedModel("sd3", "org/sd3", "refused"), "gated", logging.ERROR, "HF_TOKEN"),
    (hub.HubUnreachable("sdxl", "org/sdxl", "down"), "network", logging.WARNING, "could not be reached"),
    (hub.ModelUnavailable("sdxl", "org/sdxl", "the disk of the model cache is full"), "downloading", logging.ERROR,
     "the disk of the model cache is full"),
    (OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out of memory", logging.ERROR,
     "ran out of memory"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "out of memory", logging.ERROR, "ran out of memory"),
    (TimeoutError(), "timed out", logging.WARNING, "took too long"),
    (JobTimedOut(4, 600), "timed out", logging.WARNING, "took too long"),
    (ModelLoadError("pony"), "bad checkpoint", logging.ERROR, "pony could not be loaded"),
    (remote_error(f"Cannot load model: {SECRET_PATH}", ["ModelLoadError", "RuntimeError", "Exception"]),
     "bad checkpoint", logging.ERROR, "could not be loaded"),
    (OSError(f"[Errno 2] No such file or directory: '{SECRET_PATH}'"), "not loadable", logging.ERROR,
     "could not be loaded"),
    (JobCancelled(1, 3), "cancelled", logging.INFO, "Canceled at step 3."),
    (Withheld("Not posted here."), "withheld", logging.INFO, "Not posted here."),
    (RemoteJobError("lost track of the remote job: ConnectionError('redis at 10.0.0.3:6379')"), "worker lost",
     logging.WARNING, "stopped answering"),
    (ValueError(f"shapes (2,77,768) and (2,77,1024) mismatch in {SECRET_PATH}"), "unexpected", logging.ERROR,
     "It has been logged"),
    (KeyError("down_blocks.0.attentions.0"), "unexpected", logging.ERROR, "It has been logged"),
])
def test_each_failure_class_has_its_sentence_and_level_and_never_the_raw_text(
        error: BaseException, kind: str, level: int, says: str, caplog: pytest.LogCaptureFixture) -> None:
    row = failures.classify(error)
    assert (row.kind, row.level) == (kind, level)
    message = member_message(error)
    assert says in message and "Traceback" not in message
    assert SECRET_PATH not in message and "10.0.0.3" not in message and "mismatch" not in message
    caplog.set_level(logging.INFO, logger="bot.services.failures")
    failures.log_failure(error, job_id=42)
    record = caplog.records[-1]  # the owner reads the detail in the log
    assert record.levelno == level and "42" in record.getMessage() and str(error) in record.getMessage()


def test_download_failures_say_the_credits_were_refunded() -> None:
    for error in (hub.GatedModel("a", "o/a", "r"), hub.HubUnreachable("a", "o/a", "r"), hub.ModelUnavailable("a", "o/a", "r")):
        assert member_message(error).endswith("The job's credits were refunded.")


def test_a_gated_model_names_its_licence_page() -> None:
    message = member_message(hub.GatedModel("sd3-medium", "stabilityai/stable-diffusion-3-medium-diffusers", "r"))
    assert "https://huggingface.co/stabilityai/stable-diffusion-3-medium-diffusers and set" not in message
    assert "accept its licence at https://huggingface.co/stabilityai/stable-diffusion-3-medium-diffusers" in message


def test_messages_written_for_members_are_shown_without_paths() -> None:
    shown = member_message(RequestRefused(f"LoRA 'x' is not a readable .safetensors file ({SECRET_PATH})"))
    assert shown.startswith("The job could not run: LoRA 'x' is not a readable .safetensors file")
    assert "/srv" not in shown and "atelier/private" not in shown
    reason = "The image was not posted: the NSFW image filter scored it 0.91 (limit 0.60). Case #3."
    assert member_message(Withheld(reason)) == reason
