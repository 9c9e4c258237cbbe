"""Training as an engine job (task="train"): only on training devices, models evicted first, the LoRA
written into the training folder, cancel, and a job claimed again after a crash resumes."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from inference import lora
from inference.engine import Engine
from inference.media import read_parameters
from inference.models import ModelRegistry, RequestRefused
from inference.training.job import output_path, pack_images, unpack_images, work_dir
from inference.types import GenerationRequest, JobCancelled
from tests.training.test_trainer import training_images


@pytest.fixture(scope="module")
def registry(tiny_models: Path) -> ModelRegistry:
    return ModelRegistry.load(tiny_models)


def train_request(job_id: int = 5, *, model: str = "tiny-sd15", steps: int = 6, output: str = "42/rosie.safetensors",
                  **options: object) -> GenerationRequest:
    training = {"kind": "subject", "trigger": "zxq_rosie", "rank": 4, "learning_rate": 1e-3, "name": "rosie",
                "output": output, "resolution": 64, "sample_steps": 2, "checkpoint_every": 3} | options
    return GenerationRequest(job_id=job_id, model=model, prompt="zxq_rosie", task="train", steps=steps, seed=3,
                             train_images=pack_images(training_images()), extra={"training": training})


def test_a_training_job_evicts_the_devices_models_and_writes_the_lora(registry: ModelRegistry, tmp_path: Path) -> None:
    engine = Engine(registry, device="cpu", train_dir=tmp_path)
    engine.pipeline("tiny-sd15")
    assert "tiny-sd15" in engine.cache.on_device("cpu")
    steps: list[int] = []
    result = engine.run(train_request(), on_step=lambda step, total: steps.append(step))
    assert "tiny-sd15" not in engine.cache.on_device("cpu")
    assert steps == [1, 2, 3, 4, 5, 6]
    assert lora.LoraLibrary(tmp_path / "loras").names() == ["42/rosie"]
    assert not work_dir(tmp_path, 5).exists()
    with Image.open(io.BytesIO(result.images[0].png)) as sample:
        assert sample.size == (64, 64)
    assert 'Lora trained: "rosie (subject, rank 4, 6 steps)"' in (read_parameters(result.images[0].png) or "")


def test_devices_without_a_training_folder_refuse(registry: ModelRegistry) -> None:
    with pytest.raises(RequestRefused, match="does not train"):
        Engine(registry, device="cpu").run(train_request())


@pytest.mark.parametrize("model", ["tiny-sdxl-turbo", "tiny-esrgan"])
def test_only_sd15_and_sdxl_bases_train(registry: ModelRegistry, tmp_path: Path, model: str) -> None:
    with pytest.raises(RequestRefused, match="cannot be trained on"):
        Engine(registry, device="cpu", train_dir=tmp_path).run(train_request(model=model))


@pytest.mark.parametrize("output", ["../escape.safetensors", "/abs.safetensors", "42/rosie.pt", ""])
def test_outputs_stay_inside_the_training_folder(tmp_path: Path, output: str) -> None:
    with pytest.raises(RequestRefused):
        output_path(tmp_path, output)


def test_absurd_settings_from_elsewhere_are_refused(registry: ModelRegistry, tmp_path: Path) -> None:
    engine = Engine(registry, device="cpu", train_dir=tmp_path)
    with pytest.raises(RequestRefused, match="out of range"):
        engine.run(train_request(rank=4096))
    with pytest.raises(RequestRefused, match="out of range"):
        engine.run(train_request(steps=10**6))


def test_cancel_stops_the_job_and_leaves_no_lora(registry: ModelRegistry, tmp_path: Path) -> None:
    engine = Engine(registry, device="cpu", train_dir=tmp_path)
    steps: list[int] = []
    with pytest.raises(JobCancelled) as raised:
        engine.run(train_request(), on_step=lambda step, total: steps.append(step), is_cancelled=lambda: len(steps) >= 2)
    assert raised.value.step == 2
    assert not (tmp_path / "loras" / "42" / "rosie.safetensors").exists()
    assert not work_dir(tmp_path, 5).exists()


def test_the_same_job_claimed_again_after_a_crash_resumes(registry: ModelRegistry, tmp_path: Path) -> None:
    engine = Engine(registry, device="cpu", train_dir=tmp_path)

    def crash(step: int, total: int) -> None:
        if step == 5:
            raise RuntimeError("worker died")

    with pytest.raises(RuntimeError):
        engine.run(train_request(), on_step=crash)
    assert (work_dir(tmp_path, 5) / "checkpoint.pt").exists()
    with Image.open(work_dir(tmp_path, 5) / "sample.png") as sample:  # the latest sample, for the progress message
        assert sample.size == (64, 64)
    seen: list[int] = []
    engine.run(train_request(), on_step=lambda step, total: seen.append(step))
    assert seen == [4, 5, 6]


def test_images_round_trip_through_the_request() -> None:
    images = training_images(3)
    assert unpack_images(pack_images(images)) == images


def test_a_trained_lora_is_used_by_name_from_the_member_space_on_any_device(registry: ModelRegistry,
                                                                           tmp_path: Path) -> None:
    Engine(registry, device="cpu", train_dir=tmp_path).run(train_request(steps=3, learning_rate=1e-3))
    generating = Engine(registry, device="cpu", member_lora_dir=tmp_path / "loras")  # a device that does not train
    request = GenerationRequest(job_id=9, model="tiny-sd15", prompt="zxq_rosie", width=64, height=64, steps=2, seed=1)
    plain = generating.run(request).images[0].png
    styled = generating.run(GenerationRequest(**{**request.to_dict(), "loras": [("member:42/rosie", 1.0)]}))
    assert styled.images[0].png != plain
    for name in ("member:../42/rosie", "42/rosie", "member:42/rosie.safetensors"):
        with pytest.raises(lora.LoraError):
            generating.run(GenerationRequest(**{**request.to_dict(), "loras": [(name, 1.0)]}))


def test_only_the_training_devices_engines_get_the_training_folder(registry: ModelRegistry, tmp_path: Path) -> None:
    from bot.engines import engine_factory
    from bot.settings import load_settings

    settings = load_settings(train_devices="cuda:1", data_dir=tmp_path)
    factory = engine_factory(settings, registry)
    assert factory("cuda:1").train_dir == tmp_path / "training"
    assert factory("cpu").train_dir is None  # generates only, but reads the member LoRA space
    assert factory("cpu").loras.members.root == tmp_path / "training" / "loras"  # type: ignore[union-attr]
    assert engine_factory(load_settings(data_dir=tmp_path), registry)("cpu").loras is None  # no training: no members
