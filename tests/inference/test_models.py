"""The registry: the packaged defaults, TOML errors, aspects and option limits."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inference.models import (
    ASPECTS,
    ModelRegistry,
    RegistryError,
    RequestRefused,
    UnknownAspect,
    UnknownModel,
    validate_request_options,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_registry_names_real_hub_models() -> None:
    registry = ModelRegistry.load(None)
    assert registry.names() == ["sd15", "sdxl", "sdxl-lightning", "sdxl-turbo", "animagine-xl-3.1",
                                "sd15-inpainting", "sdxl-inpainting", "svd", "svd-xt", "realesrgan-x4plus", "sd15-openpose", "sdxl-openpose",
                                "sd-x4-upscaler", "sd21", "sd3-medium", "deepfloyd-if", "blip-large",
                                "wd-vit-tagger-v3", "ip-adapter-sd15", "ip-adapter-sdxl"]
    assert registry.default.name == "sd15"
    sd15 = registry.get("sd15")
    assert sd15.source == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert (sd15.steps, sd15.guidance, sd15.scheduler, sd15.width) == (25, 7.0, "dpmpp-2m-karras", 512)
    lightning = registry.get("sdxl-lightning")
    assert lightning.source == "stabilityai/stable-diffusion-xl-base-1.0"
    assert lightning.extra["unet_repo"] == "ByteDance/SDXL-Lightning"
    assert lightning.extra["unet_file"] == "sdxl_lightning_4step_unet.safetensors"
    assert (lightning.steps, lightning.guidance, lightning.scheduler) == (4, 0.0, "euler-trailing")
    assert lightning.sampler == "Euler" and lightning.schedule_type == "SGM Uniform"
    turbo = registry.get("sdxl-turbo")
    assert (turbo.steps, turbo.guidance, turbo.width, turbo.height) == (1, 0.0, 512, 512)
    assert registry.get("sdxl").width == 1024
    animagine = registry.get("animagine-xl-3.1")
    assert animagine.source == "cagliostrolab/animagine-xl-3.1" and animagine.kind == "sdxl"
    assert (animagine.steps, animagine.guidance, animagine.sampler) == (28, 7.0, "Euler a")
    assert animagine.extra["style"] == "anime"


def test_models_and_media_do_not_import_torch() -> None:
    code = "import sys, inference.models, inference.media; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("model", "aspect", "size"),
    [
        ("sdxl", "1:1", (1024, 1024)),
        ("sdxl", "16:9", (1344, 768)),
        ("sdxl", "9:16", (768, 1344)),
        ("sdxl", "4:3", (1152, 896)),
        ("sd15", "1:1", (512, 512)),
        ("sd15", "3:2", (640, 448)),
        ("sd15", "2:3", (448, 640)),
    ],
)
def test_size_for_aspect_keeps_the_pixel_budget(model: str, aspect: str, size: tuple[int, int]) -> None:
    spec = ModelRegistry.load(None).get(model)
    assert spec.size_for_aspect(aspect) == size


def test_every_aspect_is_on_the_64_grid_near_the_budget() -> None:
    for spec in ModelRegistry.load(None):
        budget = spec.width * spec.height
        for aspect in ASPECTS:
            w, h = spec.size_for_aspect(aspect)
            assert w % 64 == 0 and h % 64 == 0
            assert 0.8 * budget <= w * h <= 1.2 * budget


def test_unknown_aspect_lists_valid_ones() -> None:
    with pytest.raises(UnknownAspect, match="valid aspects: 1:1, 4:3"):
        ModelRegistry.load(None).get("sd15").size_for_aspect("5:4")


def test_unknown_model_lists_valid_names(tiny_registry: ModelRegistry) -> None:
    with pytest.raises(UnknownModel) as info:
        tiny_registry.get("sd99")
    assert info.value.name == "sd99"
    assert info.value.valid == tiny_registry.names()
    assert "tiny-sd15, tiny-sdxl, tiny-sdxl-lightning, tiny-sdxl-turbo" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_relative_sources_resolve_against_the_toml_folder(tmp_path: Path) -> None:
    (tmp_path / "weights").mkdir()
    path = write(
        tmp_path,
        'default = "a"\n[models.a]\nkind = "sd15"\nsource = "weights"\n'
        '[models.b]\nkind = "sdxl"\nsource = "owner/hub-model"\n',
    )
    registry = ModelRegistry.load(path)
    assert registry.get("a").source == str((tmp_path / "weights").resolve())
    assert registry.get("b").source == "owner/hub-model"
    # Kind defaults fill what the table leaves out.
    assert (registry.get("b").width, registry.get("b").steps) == (1024, 30)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("default = \n", "malformed TOML"),
        ('default = "a"\nmodels = 3\n', "key 'models'"),
        ('[models.a]\nsource = "x"\n', "models.a.kind is missing"),
        ('[models.a]\nkind = "sd15"\n', "models.a.source is missing"),
        ('[models.a]\nkind = "flux"\nsource = "x"\n', "models.a.kind = 'flux'"),
        ('[models.a]\nkind = "sd15"\nsource = "x"\nsteps = "many"\n', "models.a.steps has the wrong type"),
        ('[models.a]\nkind = "sd15"\nsource = "x"\nscheduler = "magic"\n', "models.a.scheduler"),
        ('[models.a]\nkind = "sd15"\nsource = "x"\nwidth = 500\n', "models.a.width must be a multiple of 8"),
        ('default = "b"\n[models.a]\nkind = "sd15"\nsource = "x"\n', "default = 'b'"),
    ],
)
def test_bad_toml_gives_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RegistryError) as info:
        ModelRegistry.load(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_a_registry_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="file not found"):
        ModelRegistry.load(tmp_path / "nope.toml")


def test_option_limits_have_specific_messages() -> None:
    lightning = ModelRegistry.load(None).get("sdxl-lightning")
    with pytest.raises(RequestRefused, match=r"^Steps must be 1-8 for sdxl-lightning; you asked for 80$"):
        validate_request_options(lightning, 80, 1)
    with pytest.raises(RequestRefused, match="Steps must be 1-8"):
        validate_request_options(lightning, 0, 1)
    with pytest.raises(RequestRefused, match="Count must be 1-4 for sdxl-lightning; you asked for 5"):
        validate_request_options(lightning, 4, 5)
    with pytest.raises(RequestRefused, match="Guidance must be 0-30"):
        validate_request_options(lightning, 4, 1, guidance=float("nan"))
    validate_request_options(lightning, 8, 4, guidance=0.0)
    validate_request_options(lightning, None, None)


def test_user_file_extends_overrides_patches_and_disables_packaged_models(tmp_path: Path) -> None:
    path = write(tmp_path, 'default = "sdxl"\n'
                 '[models.mine]\nkind = "sd15"\nsource = "owner/mine"\n'
                 '[models.sd15]\nsteps = 12\n'  # no kind or source: changes the packaged entry's field
                 '[models.sdxl-turbo]\nkind = "sdxl-turbo"\nsource = "owner/turbo"\n'  # replaces it
                 '[models.svd-xt]\ndisabled = true\n')
    registry = ModelRegistry.load(path)
    packaged = ModelRegistry.load()
    assert set(registry.names()) == set(packaged.names()) - {"svd-xt"} | {"mine"}
    assert registry.default_name == "sdxl"
    assert registry.get("sd15").steps == 12 and registry.get("sd15").source == packaged.get("sd15").source
    assert registry.get("sdxl-turbo").source == "owner/turbo"
    assert registry.get("sdxl-turbo").description == ""  # a full table replaces, it does not merge


def test_packaged_false_serves_the_file_alone(tmp_path: Path) -> None:
    path = write(tmp_path, 'packaged = false\n[models.a]\nkind = "sd15"\nsource = "owner/a"\n')
    assert ModelRegistry.load(path).names() == ["a"]
