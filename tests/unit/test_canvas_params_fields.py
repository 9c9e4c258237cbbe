"""What a canvas edit keeps of its source job's parameters: only what the inpaint runner honours."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from bot.params import canvas
from inference.models import ModelSpec
from inference.types import GenerationRequest

# The request fields inference/runners/inpaint.py reads (canvas edits set task, size, images, strength,
# mask blur, count and seed themselves).
HONOURED = {"job_id", "model", "prompt", "negative_prompt", "width", "height", "steps", "guidance", "seed", "count",
            "task", "scheduler", "init_image", "strength", "mask_image", "mask_blur", "loras", "embeddings"}


def test_a_canvas_edit_drops_every_request_field_the_inpaint_runner_ignores() -> None:
    spec = ModelSpec(name="m", kind="sd15", source="x", steps=4, guidance=5.0, scheduler="euler", width=512,
                     height=512, max_steps=50, max_count=4)
    # A source job that set every field (a style_ref job, say, with a training set thrown in).
    base = {field.name: f"parent-{field.name}" for field in dataclasses.fields(GenerationRequest)}
    base.update({"style_ref": "ink.png", "loras": [["detail", 0.8]], "embeddings": ["easyneg"],
                 "scheduler": "dpmpp-sde-karras"})
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (512, 512, 3), dtype=np.uint8))
    params = canvas.inpaint_params(base, canvas.zoom_out(image, 2.0), spec=spec, strength=1.0,
                                   source={"job_id": 3, "index": 0})
    fields = {field.name for field in dataclasses.fields(GenerationRequest)}
    kept = {name for name in fields & set(params) if params[name] == base[name]}
    assert kept <= HONOURED, f"kept but not honoured: {sorted(kept - HONOURED)}"
    assert not {"ip_images", "ip_weights", "ip_mode", "ip_scale", "style_ref", "train_images"} & set(params)
    assert params["loras"] == [["detail", 0.8]] and params["embeddings"] == ["easyneg"]
    assert params["scheduler"] == "dpmpp-sde-karras" and params["prompt"] == "parent-prompt"
