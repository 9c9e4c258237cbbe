"""The SD x4 upscaler, SD 2.x (v-prediction), SD 3 and DeepFloyd IF kinds on tiny models, loaded
through from_pretrained(folder) like real ones, through the engine's handler registry."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import KINDS, TEXT_TO_IMAGE_KINDS, RequestRefused
from inference.runners import RUNNERS
from inference.types import GenerationRequest, JobCancelled


def request(model: str, **changes: object) -> GenerationRequest:
    base = GenerationRequest(job_id=5, model=model, prompt="a red fox in snow", negative_prompt="blurry", width=64,
                             height=64, steps=2, guidance=5.0, seed=3, scheduler=None)
    return replace(base, **changes)  # type: ignore[arg-type]


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def test_every_kind_has_a_runner_and_the_drawing_ones_are_offered_to_imagine() -> None:
    assert set(RUNNERS) == set(KINDS)
    assert {"sd2", "sd3", "deepfloyd-if"} <= set(TEXT_TO_IMAGE_KINDS)


def _upscale_request(size: tuple[int, int], **changes: object) -> GenerationRequest:
    small = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    options: dict[str, object] = {"task": "upscale", "scale": 4, "init_image": encode_job_image(small), "steps": 2,
                                  "guidance": 9.0,
                                  "extra": {"guide": "a red fox", "parameters": "a red fox\nSteps: 4, Seed: 3"}}
    return request("tiny-sd-x4", **(options | changes))


def test_sd_x4_upscales_four_times_and_keeps_the_parameters(engine: Engine) -> None:
    steps: list[tuple[int, int]] = []
    result = engine.run(_upscale_request((40, 24)), on_step=lambda s, t: steps.append((s, t)))
    (image,) = result.images
    assert (image.width, image.height) == (160, 96) and pixels(image.png).shape == (96, 160, 3)
    assert read_parameters(image.png) == ("a red fox\nSteps: 4, Seed: 3, Postprocess upscale by: 4, "
                                          "Postprocess upscaler: tiny-sd-x4")
    assert steps == [(1, 2), (2, 2)]


@pytest.mark.parametrize(("changes", "size", "message"), [
    ({"scale": 2}, (40, 24), "enlarges x4 only; you asked for x2"),
    ({}, (160, 120), "takes images up to 16,384 pixels"),
    ({"task": "img2img"}, (40, 24), "cannot run a img2img job"),
])
def test_sd_x4_refusals(engine: Engine, changes: dict[str, object], size: tuple[int, int], message: str) -> None:
    with pytest.raises(RequestRefused, match=message):
        engine.run(_upscale_request(size, **changes))


def test_sd2_is_v_prediction_and_deterministic(engine: Engine) -> None:
    pipe = engine.pipeline("tiny-sd2")
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    a = engine.run(request("tiny-sd2", width=64, height=128))
    b = engine.run(request("tiny-sd2", width=64, height=128))
    assert np.array_equal(pixels(a.images[0].png), pixels(b.images[0].png))
    assert (a.images[0].width, a.images[0].height) == (64, 128)
    text = read_parameters(a.images[0].png)
    assert "Model: tiny-sd2" in text and "Sampler: Euler" in text
    # Another sampler keeps predicting v (it is built from the folder's scheduler config).
    other = engine.run(request("tiny-sd2", scheduler="dpmpp-2m-karras"))
    assert "Sampler: DPM++ 2M, Schedule type: Karras, " in read_parameters(other.images[0].png)
    assert pipe.scheduler.config.prediction_type == "v_prediction"


def test_sd2_variation(engine: Engine) -> None:
    first = engine.run(request("tiny-sd2"))
    init = encode_job_image(Image.open(io.BytesIO(first.images[0].png)).convert("RGB"))
    varied = engine.run(request("tiny-sd2", task="img2img", init_image=init, strength=0.7, steps=3, seed=4))
    assert "Denoising strength: 0.7" in read_parameters(varied.images[0].png)


def test_sd3_draws_from_text_with_three_encoders(engine: Engine) -> None:
    pipe = engine.pipeline("tiny-sd3")
    assert pipe.text_encoder_3 is not None and pipe.transformer is not None
    result = engine.run(request("tiny-sd3", width=128, height=64, count=2))
    assert [(i.width, i.height, i.seed) for i in result.images] == [(128, 64, 3), (128, 64, 4)]
    alone = engine.run(request("tiny-sd3", width=128, height=64, seed=4))
    assert np.array_equal(pixels(result.images[1].png), pixels(alone.images[0].png))
    assert "Model: tiny-sd3" in read_parameters(result.images[0].png) and result.grid_png is not None


@pytest.mark.parametrize(("changes", "message"), [
    ({"task": "img2img", "init_image": "x"}, "only draws from text"),
    ({"scheduler": "euler"}, "flow-matching scheduler only"),
    ({"width": 72}, "multiples of 16"),
])
def test_sd3_refusals(engine: Engine, changes: dict[str, object], message: str) -> None:
    with pytest.raises(RequestRefused, match=message):
        engine.run(request("tiny-sd3", **changes))


def test_deepfloyd_if_three_stages(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    result = engine.run(request("tiny-if", width=512, height=512, steps=2), on_step=lambda s, t: seen.append((s, t)))
    (image,) = result.images
    # Stage I 32 px -> stage II 128 px -> x4 upscaler 512 px.
    assert (image.width, image.height) == (512, 512) and pixels(image.png).shape == (512, 512, 3)
    assert "Model: tiny-if" in read_parameters(image.png)
    # 2 + 2 steps of stages I and II, then the x4 upscaler's 2.
    assert seen == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


def test_deepfloyd_if_cancels_between_stages(engine: Engine) -> None:
    seen: list[int] = []
    with pytest.raises(JobCancelled) as info:
        engine.run(request("tiny-if", width=512, height=512), on_step=lambda s, t: seen.append(s),
                   is_cancelled=lambda: len(seen) >= 3)
    assert info.value.step == 3


def test_packaged_registry_entries_for_the_new_kinds() -> None:
    from inference.models import ModelRegistry

    registry = ModelRegistry.load(None)
    pose = registry.get("sd15-openpose")
    assert (pose.kind, pose.source, pose.base) == ("controlnet", "lllyasviel/control_v11p_sd15_openpose", "sd15")
    assert (pose.width, pose.steps, pose.scheduler) == (512, 25, "dpmpp-2m-karras")  # the base's
    assert registry.get("sdxl-openpose").width == 1024
    assert registry.get("sd21").kind == "sd2" and registry.get("sd21").width == 768
    assert registry.get("sd3-medium").scheduler == "default"
    assert registry.get("deepfloyd-if").extra["stage_3"] == "sd-x4-upscaler"
    assert registry.get("sd-x4-upscaler").extra["max_input"] == 256 * 256
