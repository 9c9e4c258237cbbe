"""Single-file checkpoints in the original (A1111 / Civitai) layout: detection, loading, parameters."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from inference import checkpoints
from inference.engine import Engine
from inference.media import read_parameters
from inference.models import ModelRegistry, RegistryError
from inference.types import GenerationRequest


def _request(model: str, **changes: object) -> GenerationRequest:
    values: dict[str, object] = {"job_id": 1, "model": model, "prompt": "a lighthouse at dusk", "width": 64,
                                 "height": 64, "steps": 2, "seed": 7, **changes}
    return GenerationRequest(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def registry(single_file_models: Path) -> ModelRegistry:
    return ModelRegistry.load(single_file_models)


def test_checkpoint_weights_load_back_as_the_diffusers_pipeline(registry: ModelRegistry, tiny_models: Path) -> None:
    from diffusers import StableDiffusionPipeline

    engine = Engine(registry, "cpu", batch_max=1)
    loaded = engine.pipeline("tiny-sd15-file")
    reference = StableDiffusionPipeline.from_pretrained(str(tiny_models.parent / "tiny-sd15"))
    for part in ("unet", "vae", "text_encoder"):
        mine, theirs = getattr(loaded, part).state_dict(), getattr(reference, part).state_dict()
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs), part


def test_sdxl_checkpoint_fills_both_text_encoders(registry: ModelRegistry, single_file_models: Path) -> None:
    from diffusers import StableDiffusionXLPipeline

    pipe = Engine(registry, "cpu", batch_max=1).pipeline("tiny-pony")
    reference = StableDiffusionXLPipeline.from_pretrained(str(single_file_models.parent / "config-sdxl"))
    for part in ("unet", "text_encoder", "text_encoder_2"):
        mine, theirs = getattr(pipe, part).state_dict(), getattr(reference, part).state_dict()
        assert all(torch.equal(mine[k], theirs[k]) for k in theirs), part


@pytest.mark.parametrize("model", ["tiny-sd15-file", "tiny-pony"])
def test_checkpoints_generate_with_the_a1111_model_hash(registry: ModelRegistry, model: str) -> None:
    result = Engine(registry, "cpu", batch_max=1).run(_request(model))
    text = read_parameters(result.images[0].png)
    digest = hashlib.sha256(Path(registry.get(model).source).read_bytes()).hexdigest()[:10]
    assert f"Model hash: {digest}, Model: {model}" in text
    assert ("Clip skip: 2" in text) == (model == "tiny-sd15-file")


def test_clip_skip_conditions_on_the_penultimate_layer(registry: ModelRegistry) -> None:
    from dataclasses import replace

    engine = Engine(registry, "cpu", batch_max=1)
    spec = registry.get("tiny-sd15-file")
    skipped = engine.run(_request("tiny-sd15-file")).images[0].png
    plain = ModelRegistry([replace(spec, extra={**spec.extra, "clip_skip": 1})], spec.name)
    assert Engine(plain, "cpu", cache=engine.cache, batch_max=1).run(_request("tiny-sd15-file")).images[0].png \
        != skipped


def test_models_dir_serves_every_checkpoint_with_its_family(single_file_models: Path, tiny_models: Path,
                                                            tmp_path: Path) -> None:
    folder = single_file_models.parent / "checkpoints"
    registry = ModelRegistry.load(tiny_models, models_dir=folder)
    # The tiny TOML's models, plus one model per file named after it (the TOML entries of the
    # single-file fixture are not loaded here, so both files are new).
    assert registry.get("tiny-sd15-model").kind == "sd15"
    assert registry.get("tiny-pony").kind == "sdxl"
    assert registry.get("tiny-pony").single_file
    assert "tiny-sd15" in registry and registry.default_name == "tiny-sd15"


def test_models_dir_skips_what_it_cannot_serve(tmp_path: Path, tiny_models: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    # An inpainting checkpoint (9 input channels) is served, as an inpainting entry (canvas edits only);
    # an instruct one (8) is not.
    (tmp_path / "old.ckpt").write_bytes(b"\x80\x04pickle")
    save_file({"lora_unet_down_blocks_0.lora_down.weight": torch.zeros(2, 2)}, str(tmp_path / "style.safetensors"))
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 9, 3, 3),
               "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(4)},
              str(tmp_path / "inpaint.safetensors"))
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 8, 3, 3),
               "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(4)},
              str(tmp_path / "instruct.safetensors"))
    with caplog.at_level("WARNING"):
        registry = ModelRegistry.load(tiny_models, models_dir=tmp_path)
    assert not {"old", "style", "instruct"} & set(registry.names())
    assert registry.get("inpaint").kind == "sd15-inpaint"
    assert registry.get("inpaint").extra["config"] == "stable-diffusion-v1-5/stable-diffusion-inpainting"
    assert "pickled checkpoint" in caplog.text and "a LoRA" in caplog.text and "8 input channels" in caplog.text


def test_detection_reads_only_the_header(tmp_path: Path) -> None:
    header = {"conditioner.embedders.1.model.positional_embedding": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
              "model.diffusion_model.out.2.bias": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "x.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(8))
    assert checkpoints.detect(path) == "sdxl"


@pytest.mark.parametrize(("entry", "message"), [
    ('source = "m.ckpt"\nkind = "sd15"', "pickled checkpoint"),
    ('source = "missing.safetensors"', "no such file"),
    ('source = "m.safetensors"\nkind = "sdxl"', "SD 1.5 checkpoint"),
    ('source = "m.safetensors"\nclip_skip = 3', "clip_skip must be 1"),
    ('source = "m.safetensors"\nvae = "v.pt"', "pickled files are never loaded"),
])
def test_bad_single_file_entries_are_one_line(tmp_path: Path, single_file_models: Path, entry: str,
                                             message: str) -> None:
    (tmp_path / "m.ckpt").write_bytes(b"x")
    (tmp_path / "m.safetensors").write_bytes(
        (single_file_models.parent / "checkpoints" / "tiny sd15 model.safetensors").read_bytes())
    toml = tmp_path / "models.toml"
    toml.write_text(f"[models.mine]\n{entry}\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=message):
        ModelRegistry.load(toml)


def test_separate_vae_replaces_the_checkpoints_own(tmp_path: Path, single_file_models: Path,
                                                   tiny_models: Path) -> None:
    """`vae` may be an original-layout VAE file; the model then draws with its weights."""
    from diffusers import AutoencoderKL

    from tests.single_file import vae_to_original

    other = AutoencoderKL.from_pretrained(str(tiny_models.parent / "tiny-sdxl"), subfolder="vae")
    vae_file = tmp_path / "other-vae.safetensors"
    save_file({k.removeprefix("first_stage_model."): v.contiguous()
               for k, v in vae_to_original(other.state_dict(), other.config).items()}, str(vae_file))
    checkpoint = single_file_models.parent / "checkpoints" / "tiny sd15 model.safetensors"
    toml = tmp_path / "models.toml"
    toml.write_text(f'packaged = false\n[single_file]\nsd15 = "{tiny_models.parent / "tiny-sd15"}"\n'
                    f'[models.mine]\nsource = "{checkpoint}"\nvae = "other-vae.safetensors"\n', encoding="utf-8")
    registry = ModelRegistry.load(toml)
    engine = Engine(registry, "cpu", batch_max=1)
    vae = engine.pipeline("mine").vae.state_dict()
    assert all(torch.equal(vae[k], v) for k, v in other.state_dict().items())
    assert "VAE: other-vae.safetensors" in read_parameters(engine.run(_request("mine", steps=1)).images[0].png)


def test_checkpoint_loads_offline_with_its_familys_config_from_the_hub_cache(
        tmp_path: Path, single_file_models: Path, tiny_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No `config` and no [single_file]: the family's hub repo is read from the local Hugging Face cache
    (config files only; no weights in it), with the hub unreachable."""
    import shutil

    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    shutil.copytree(tiny_models.parent / "tiny-sd15", snapshot, ignore=shutil.ignore_patterns("*.safetensors"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef", encoding="utf-8")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    checkpoint = single_file_models.parent / "checkpoints" / "tiny sd15 model.safetensors"
    toml = tmp_path / "models.toml"
    toml.write_text(f'packaged = false\n[models.mine]\nsource = "{checkpoint}"\n', encoding="utf-8")
    registry = ModelRegistry.load(toml)
    assert registry.get("mine").extra["config"] == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert Engine(registry, "cpu", batch_max=1).run(_request("mine", steps=1)).images


def test_checkpoint_without_a_reachable_config_says_what_to_set(tmp_path: Path, single_file_models: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    from inference.cache import ModelLoadError

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    checkpoint = single_file_models.parent / "checkpoints" / "tiny sd15 model.safetensors"
    toml = tmp_path / "models.toml"
    toml.write_text(f'packaged = false\n[models.mine]\nsource = "{checkpoint}"\n', encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"not in the Hugging Face cache.*set `config`"):
        Engine(ModelRegistry.load(toml), "cpu", batch_max=1).pipeline("mine")
