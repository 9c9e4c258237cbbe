"""One runner per pipeline kind, and the registry the engine finds them in.

A runner is ``handle(engine, spec, request, on_step, is_cancelled)`` (inference/runners/base.py):
it checks the request, runs the pipeline on the engine's device and returns the job's result.
Adding a kind means a runner file, its name in inference/models.py's KINDS and one entry below;
the engine is not edited.
"""

from __future__ import annotations

from inference.models import INPAINT_KINDS, SD_KINDS
from inference.runners import (
    caption,
    controlnet,
    deepfloyd,
    img2vid,
    inpaint,
    sd,
    sd2,
    sd3,
    sd_upscale,
    upscale,
)
from inference.runners.base import Runner

RUNNERS: dict[str, Runner] = {
    **dict.fromkeys(SD_KINDS, sd.handle),
    **dict.fromkeys(INPAINT_KINDS, inpaint.handle),
    "esrgan": upscale.handle,
    "svd": img2vid.handle,
    "controlnet": controlnet.handle,
    "sd-x4": sd_upscale.handle,
    "sd2": sd2.handle,
    "sd3": sd3.handle,
    "deepfloyd-if": deepfloyd.handle,
    "caption": caption.handle,
    "tagger": caption.refuse_alone,
    "ip-adapter": caption.refuse_alone,
}
