"""One runner per pipeline kind.

The text-to-image families (SD 1.5, SDXL and its distillations) and the older special tasks
(upscale, img2vid) are dispatched by `inference.engine.Engine.run` itself. Newer kinds register a
*handler* here instead: a function ``handler(engine, spec, request, on_step, is_cancelled)`` that
returns a finished ``GenerationResult``. The engine looks a model's kind up in `HANDLERS` before
anything else, so adding a kind means adding a runner file and one entry below, never editing
the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inference.runners import controlnet, deepfloyd, sd2, sd3, sd_upscale

# kind -> handler(engine, spec, request, on_step, is_cancelled) -> GenerationResult
Handler = Callable[..., Any]
HANDLERS: dict[str, Handler] = {
    "controlnet": controlnet.handle,
    "sd-x4": sd_upscale.handle,
    "sd2": sd2.handle,
    "sd3": sd3.handle,
    "deepfloyd-if": deepfloyd.handle,
}
