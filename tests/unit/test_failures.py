"""Members see a specific, safe message per failure class; the raw text goes to the log (issue 14, item 11)."""

from __future__ import annotations

import logging

import pytest

from bot.failures import FAILURE_CLASSES, classify, member_message
from bot.jobs import Withheld
from inference.models import InvalidOption as RunnerInvalidOption
from inference.remote import RemoteJobError, _remote_error

SECRET_PATH = "/srv/atelier/private/models/sd15/unet/diffusion_pytorch_model.safetensors"


class OutOfMemoryError(RuntimeError):
    """Named like torch's, which the table matches by name (bot/ never imports torch)."""


class ModelLoadError(RuntimeError):
    pass


@pytest.mark.parametrize(("error", "klass"), [
    (OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "out_of_memory"),
    (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), "out_of_memory"),
    (ModelLoadError(f"Cannot load model 'sd15': {SECRET_PATH} is corrupt"), "model_load"),
    (OSError(f"[Errno 2] No such file or directory: '{SECRET_PATH}'"), "model_load"),
    (ValueError(f"shapes (2,77,768) and (2,77,1024) mismatch in {SECRET_PATH}"), "failed"),
    (KeyError("down_blocks.0.attentions.0"), "failed"),
    (_remote_error(f"Cannot load model: {SECRET_PATH}", ["ModelLoadError", "RuntimeError", "Exception"]), "model_load"),
    (RemoteJobError("lost track of the remote job: ConnectionError('redis at 10.0.0.3:6379')"), "worker_lost"),
])
def test_each_failure_class_has_its_own_message_and_never_the_raw_text(
        error: BaseException, klass: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.failures")
    message = member_message(error, job_id=42)
    assert classify(error).name == klass
    assert message == next(f.message for f in FAILURE_CLASSES if f.name == klass)
    assert SECRET_PATH not in message and "10.0.0.3" not in message and "mismatch" not in message
    assert any(str(error) in r.getMessage() and "42" in r.getMessage() for r in caplog.records)  # the owner sees it


def test_messages_written_for_members_are_shown_without_paths() -> None:
    shown = member_message(RunnerInvalidOption(f"LoRA 'x' is not a readable .safetensors file ({SECRET_PATH})"))
    assert shown.startswith("The job could not run: LoRA 'x' is not a readable .safetensors file")
    assert "/srv" not in shown and "atelier/private" not in shown
    reason = "The image was not posted: the NSFW image filter scored it 0.91 (limit 0.60). Case #3."
    assert member_message(Withheld(reason)) == reason

