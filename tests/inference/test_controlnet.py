"""ControlNet (OpenPose) jobs on the tiny SD 1.5 and SDXL pipelines, through the engine's handler registry."""

from __future__ import annotations

import importlib.machinery
import io
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.params.pose_presets import render
from inference.engine import Engine
from inference.media import encode_job_image, read_parameters
from inference.models import ModelRegistry, RequestRefused
from inference.runners import RUNNERS
from inference.runners.controlnet import fit_control
from inference.types import GenerationRequest, JobCancelled


def pose_request(model: str = "tiny-sd15-openpose", width: int = 64, height: int = 96, **changes: object
                 ) -> GenerationRequest:
    skeleton = render("waving", width, height).image
    base = GenerationRequest(job_id=3, model=model, prompt="a dancer on a stage", negative_prompt="blurry",
                             width=width, height=height, steps=2, guidance=7.0, seed=11, task="pose",
                             control_image=encode_job_image(skeleton), control_scale=1.0)
    return replace(base, **changes)  # type: ignore[arg-type]


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def test_registry_entries_inherit_their_base_model(tiny_registry: ModelRegistry) -> None:
    spec = tiny_registry.get("tiny-sd15-openpose")
    base = tiny_registry.get("tiny-sd15")
    assert spec.kind == "controlnet" and spec.base == "tiny-sd15" and "controlnet" in RUNNERS
    assert (spec.width, spec.steps, spec.scheduler, spec.guidance) == (base.width, base.steps, base.scheduler,
                                                                       base.guidance)
    assert Path(spec.source).is_dir()


def test_pose_job_png_parameters_and_skeleton_beside_it(engine: Engine) -> None:
    result = engine.run(pose_request())
    (image,) = result.images
    assert (image.width, image.height) == (64, 96)
    assert pixels(image.png).shape == (96, 64, 3)
    text = read_parameters(image.png)
    assert text.startswith("a dancer on a stage\nNegative prompt: blurry\n")
    assert "Model: tiny-sd15," in text and "Seed: 11" in text and "Size: 64x96" in text
    assert '"ControlNet 0: Module: none, Model: tiny-sd15-openpose, Weight: 1,' not in text  # quoted as A1111 does
    assert 'ControlNet 0: "Module: none, Model: tiny-sd15-openpose, Weight: 1, Resize Mode' in text
    # The posted file: the image, then the skeleton at the same height.
    shown = pixels(result.grid_png)
    assert shown.shape == (96, 128, 3)
    assert np.array_equal(shown[:, :64], pixels(image.png))
    skeleton = np.asarray(render("waving", 64, 96).image)
    assert np.abs(shown[:, 64:].astype(int) - skeleton.astype(int)).mean() < 8


def test_shares_the_base_pipeline_modules(engine: Engine) -> None:
    from inference.runners.controlnet import pipeline

    spec = engine.registry.get("tiny-sd15-openpose")
    pipe = pipeline(engine, spec, engine.registry.get("tiny-sd15"))
    base = engine.pipeline("tiny-sd15")
    assert pipe.unet is base.unet and pipe.vae is base.vae and pipe.text_encoder is base.text_encoder
    assert pipe.scheduler is not base.scheduler
    assert pipeline(engine, spec, engine.registry.get("tiny-sd15")) is pipe


def test_the_skeleton_and_its_strength_change_the_image_same_seed_same_image(engine: Engine) -> None:
    full = engine.run(pose_request())
    again = engine.run(pose_request())
    off = engine.run(pose_request(control_scale=0.0))
    other = engine.run(pose_request(control_image=encode_job_image(render("t-pose", 64, 96).image)))
    assert np.array_equal(pixels(full.images[0].png), pixels(again.images[0].png))
    assert not np.array_equal(pixels(full.images[0].png), pixels(off.images[0].png))
    assert not np.array_equal(pixels(full.images[0].png), pixels(other.images[0].png))


def test_sdxl_controlnet(engine: Engine) -> None:
    result = engine.run(pose_request("tiny-sdxl-openpose", width=128, height=64, guidance=6.0))
    assert (result.images[0].width, result.images[0].height) == (128, 64)
    assert "Model: tiny-sdxl," in read_parameters(result.images[0].png)


def test_a_variation_keeps_the_pose(engine: Engine) -> None:
    first = engine.run(pose_request())
    init = encode_job_image(Image.open(io.BytesIO(first.images[0].png)).convert("RGB"))
    varied = engine.run(pose_request(task="img2img", init_image=init, strength=0.7, steps=3, seed=12))
    text = read_parameters(varied.images[0].png)
    assert "Denoising strength: 0.7" in text and "ControlNet 0" in text
    assert varied.images[0].width == 64


@pytest.mark.parametrize(("changes", "message"), [
    ({"control_scale": 2.5}, "ControlNet strength must be 0-2; you asked for 2.5"),
    ({"control_scale": -0.1}, "ControlNet strength must be 0-2"),
    ({"control_image": None}, "needs a control image"),
    ({"task": "upscale"}, "cannot run a upscale job"),
    ({"steps": 99}, "Steps must be 1-50"),
])
def test_refuses_bad_requests(engine: Engine, changes: dict[str, object], message: str) -> None:
    with pytest.raises(RequestRefused, match=message):
        engine.run(pose_request(**changes))


def test_cancel_between_steps(engine: Engine) -> None:
    seen: list[int] = []
    with pytest.raises(JobCancelled) as info:
        engine.run(pose_request(steps=4), on_step=lambda s, t: seen.append(s), is_cancelled=lambda: len(seen) >= 2)
    assert info.value.step == 2


def test_fit_control_letterboxes_instead_of_cropping() -> None:
    skeleton = render("t-pose", 200, 100).image
    fitted = fit_control(skeleton, 100, 100)
    assert fitted.size == (100, 100)
    rows = np.asarray(fitted).sum(axis=(1, 2))
    assert rows[:20].sum() == 0 and rows[-20:].sum() == 0  # black bars above and below, the arms intact


def test_photo_without_detector_is_refused(engine: Engine) -> None:
    photo = encode_job_image(Image.new("RGB", (64, 96), (120, 110, 100)))
    with pytest.raises(RequestRefused, match="Pose detection from photos is not enabled"):
        engine.run(pose_request(control_image=photo, extra={"pose_source": "photo"}))


def test_photo_goes_through_the_detector_when_installed(engine: Engine, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """controlnet_aux is optional; a stand-in with its API proves the handler's detection path."""
    calls: list[tuple[str, tuple[int, int]]] = []

    class FakeDetector:
        @classmethod
        def from_pretrained(cls, folder: str) -> FakeDetector:
            calls.append(("load", (0, 0)))
            assert Path(folder, "body_pose_model.pth").is_file()
            return cls()

        def __call__(self, image: Image.Image, **options: object) -> Image.Image:
            calls.append(("detect", image.size))
            return render("running", *image.size).image

    module = types.ModuleType("controlnet_aux")
    module.__spec__ = importlib.machinery.ModuleSpec("controlnet_aux", None)
    module.OpenposeDetector = FakeDetector  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "controlnet_aux", module)
    (tmp_path / "body_pose_model.pth").write_bytes(b"weights")
    spec = engine.registry.get("tiny-sd15-openpose")
    monkeypatch.setattr(engine.registry, "get", lambda name: replace(spec, extra={**spec.extra,
                                                                                   "detector": str(tmp_path)})
                        if name == spec.name else ModelRegistry.get(engine.registry, name))
    photo = encode_job_image(Image.new("RGB", (64, 96), (120, 110, 100)))
    result = engine.run(pose_request(control_image=photo, extra={"pose_source": "photo"}))
    assert calls == [("load", (0, 0)), ("detect", (64, 96))]
    assert 'Module: openpose, Model: tiny-sd15-openpose' in read_parameters(result.images[0].png)
    shown = pixels(result.grid_png)[:, 64:]
    assert np.abs(shown.astype(int) - np.asarray(render("running", 64, 96).image).astype(int)).mean() < 8


def test_pose_prompts_take_a1111_emphasis(engine: Engine) -> None:
    """/pose reads `(word:1.5)` as a weight (through compel, as /imagine does), not as literal brackets."""
    plain = engine.run(pose_request(prompt="a dancer on a stage"))
    weighted = engine.run(pose_request(prompt="a (dancer:1.5) on a stage"))
    literal = engine.run(pose_request(prompt="a dancer:1.5 on a stage"))
    assert not np.array_equal(pixels(plain.images[0].png), pixels(weighted.images[0].png))
    assert not np.array_equal(pixels(literal.images[0].png), pixels(weighted.images[0].png))
    assert weighted.parameters.startswith("a (dancer:1.5) on a stage")
