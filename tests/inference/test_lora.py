"""LoRAs: names that stay inside the folder, both file layouts, family checks, and no leaks between jobs."""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import lora
from inference.engine import Engine
from inference.media import read_parameters
from inference.models import ModelRegistry
from inference.types import GenerationRequest
from tests.lora_files import tiny_loras  # noqa: F401  (fixture)


def _request(model: str = "tiny-sd15", **changes: object) -> GenerationRequest:
    base = GenerationRequest(job_id=1, model=model, prompt="a lighthouse at dusk", negative_prompt="blurry",
                             width=64, height=64, steps=2, seed=7)
    return replace(base, **changes)  # type: ignore[arg-type]


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def lora_engine(tiny_registry: ModelRegistry, tiny_loras: Path) -> Engine:  # noqa: F811
    return Engine(tiny_registry, device="cpu", lora_dir=tiny_loras)


# ----- names -----


def test_library_lists_safetensors_recursively_by_relative_name(tiny_loras: Path) -> None:  # noqa: F811
    library = lora.LoraLibrary(tiny_loras)
    assert library.names() == ["sd15/diffusers-style", "sd15/kohya-style", "sdxl/diffusers-style", "sdxl/kohya-style"]
    assert library.search("KOHYA") == ["sd15/kohya-style", "sdxl/kohya-style"]
    assert library.resolve("sdxl/kohya-style").path == (tiny_loras / "sdxl" / "kohya-style.safetensors").resolve()


@pytest.mark.parametrize("name", [
    "../sd15/kohya-style", "sd15/../sd15/kohya-style", "sd15/kohya-style.safetensors", "/etc/passwd", "notes",
    "sd15\\kohya-style", "", "outside", "linked/kohya-style",
])
def test_names_resolve_only_to_listed_files_inside_the_folder(tmp_path: Path, tiny_loras: Path, name: str) -> None:  # noqa: F811
    root = tmp_path / "loras"
    shutil.copytree(tiny_loras / "sd15", root / "sd15")
    outside = tmp_path / "secret"
    outside.mkdir()
    shutil.copy(tiny_loras / "sd15" / "kohya-style.safetensors", outside / "kohya-style.safetensors")
    os.symlink(outside / "kohya-style.safetensors", root / "outside.safetensors")  # file escaping the folder
    os.symlink(outside, root / "linked")  # folder escaping it
    library = lora.LoraLibrary(root)
    assert library.names() == ["sd15/diffusers-style", "sd15/kohya-style"]
    with pytest.raises(lora.UnknownLora, match="Unknown LoRA"):
        library.resolve(name)


def test_a_symlink_inside_the_folder_is_fine(tmp_path: Path, tiny_loras: Path) -> None:  # noqa: F811
    root = tmp_path / "loras"
    shutil.copytree(tiny_loras / "sd15", root / "sd15")
    os.symlink(root / "sd15" / "kohya-style.safetensors", root / "favourite.safetensors")
    assert "favourite" in lora.LoraLibrary(root).names()


def test_new_files_are_found_without_waiting_for_the_listing(tmp_path: Path, tiny_loras: Path) -> None:  # noqa: F811
    library = lora.LoraLibrary(tmp_path, ttl=3600)
    assert library.names() == []
    shutil.copy(tiny_loras / "sd15" / "kohya-style.safetensors", tmp_path / "fresh.safetensors")
    assert library.resolve("fresh").name == "fresh"


def test_unknown_name_suggests_close_ones(tiny_loras: Path) -> None:  # noqa: F811
    with pytest.raises(lora.UnknownLora, match=r"Unknown LoRA 'kohya'\. Did you mean: sd15/kohya-style, sdxl/kohya"):
        lora.LoraLibrary(tiny_loras).resolve("kohya")


def test_family_is_read_from_the_file(tiny_loras: Path) -> None:  # noqa: F811
    for layout in ("diffusers-style", "kohya-style"):
        assert lora.cross_attention_width(lora.read_header(tiny_loras / "sd15" / f"{layout}.safetensors")) == 32
        assert lora.cross_attention_width(lora.read_header(tiny_loras / "sdxl" / f"{layout}.safetensors")) == 64
    assert lora.family_label(2048) == "SDXL (cross-attention width 2048)"


def test_hash_is_a1111s_tensor_data_hash(tmp_path: Path, tiny_loras: Path) -> None:  # noqa: F811
    import hashlib
    import struct

    path = tiny_loras / "sd15" / "kohya-style.safetensors"
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert lora.short_hash(path) == hashlib.sha256(data[8 + length:]).hexdigest()[:12]


# ----- on the engine -----


@pytest.mark.parametrize("model", ["tiny-sd15", "tiny-sdxl"])
@pytest.mark.parametrize("layout", ["diffusers-style", "kohya-style"])
def test_both_layouts_load_change_the_image_and_leave_nothing_behind(lora_engine: Engine, model: str,
                                                                     layout: str) -> None:
    family = "sd15" if model == "tiny-sd15" else "sdxl"
    before = lora_engine.run(_request(model))
    styled = lora_engine.run(_request(model, loras=[(f"{family}/{layout}", 1.0)]))
    after = lora_engine.run(_request(model))
    assert not np.array_equal(_pixels(styled.images[0].png), _pixels(before.images[0].png))
    # The acceptance test: the next job on the same pipeline object is bit-identical to one that
    # never saw the LoRA.
    assert after.images[0].png == before.images[0].png
    # The adapter stays loaded for the next job that names it, switched off meanwhile.
    pipe = lora_engine.pipeline(model)
    assert str(lora_engine.loras.resolve(f"{family}/{layout}").path) in lora_engine.adapters.loaded(pipe)  # type: ignore[union-attr]


def test_an_engine_without_an_adapter_cache_leaves_nothing_behind(tiny_registry: ModelRegistry,
                                                                  tiny_loras: Path) -> None:  # noqa: F811
    engine = Engine(tiny_registry, device="cpu", lora_dir=tiny_loras, lora_cache=0)
    before = engine.run(_request())
    engine.run(_request(loras=[("sd15/kohya-style", 1.0)]))
    assert engine.run(_request()).images[0].png == before.images[0].png
    pipe = engine.pipeline("tiny-sd15")
    assert not any("lora" in name for name, _ in pipe.unet.named_modules())
    assert not any("lora" in name for name, _ in pipe.text_encoder.named_modules())


def test_weight_scales_the_effect(lora_engine: Engine) -> None:
    plain = _pixels(lora_engine.run(_request()).images[0].png).astype(int)
    light = _pixels(lora_engine.run(_request(loras=[("sd15/kohya-style", 0.2)])).images[0].png).astype(int)
    full = _pixels(lora_engine.run(_request(loras=[("sd15/kohya-style", 1.0)])).images[0].png).astype(int)
    assert 0 < np.abs(light - plain).mean() < np.abs(full - plain).mean()


def test_lora_on_sdxl_does_not_reach_lightning_through_shared_text_encoders(lora_engine: Engine) -> None:
    lightning = _request("tiny-sdxl-lightning", steps=2)
    before = lora_engine.run(lightning)
    lora_engine.run(_request("tiny-sdxl", loras=[("sdxl/diffusers-style", 1.0)]))
    assert lora_engine.run(lightning).images[0].png == before.images[0].png


def test_img2img_and_grids_take_loras_and_parameters_record_them(lora_engine: Engine) -> None:
    from inference.media import encode_job_image

    init = encode_job_image(Image.new("RGB", (64, 64), (30, 90, 200)))
    result = lora_engine.run(_request(task="img2img", init_image=init, strength=0.8, steps=4, count=2,
                                      loras=[("sd15/diffusers-style", 0.7), ("sd15/kohya-style", 1.25)]))
    text = read_parameters(result.images[1].png)
    digest_a = lora.short_hash(lora_engine.loras.resolve("sd15/diffusers-style").path)  # type: ignore[union-attr]
    digest_b = lora.short_hash(lora_engine.loras.resolve("sd15/kohya-style").path)  # type: ignore[union-attr]
    assert text.splitlines()[0] == "a lighthouse at dusk <lora:sd15/diffusers-style:0.7> <lora:sd15/kohya-style:1.25>"
    assert f'Lora hashes: "sd15/diffusers-style: {digest_a}, sd15/kohya-style: {digest_b}"' in text
    assert "Denoising strength: 0.8" in text


@pytest.mark.parametrize(("model", "loras", "message"), [
    ("tiny-sdxl", [("sd15/kohya-style", 1.0)],
     "LoRA 'sd15/kohya-style' was made for a base model with cross-attention width 32; tiny-sdxl is a base "
     "model with cross-attention width 64"),
    ("tiny-sd15", [("sdxl/diffusers-style", 1.0)], "was made for a base model with cross-attention width 64"),
    ("tiny-sd15", [("../sd15/kohya-style", 1.0)], "Unknown LoRA '../sd15/kohya-style'"),
    ("tiny-sd15", [("sd15/kohya-style", 2.5)], "LoRA weight must be 0-2; you asked for 2.5"),
    ("tiny-sd15", [("sd15/kohya-style", 1.0), ("sd15/kohya-style", 0.5)], "is named twice"),
])
def test_refusals_say_which_lora_and_why(lora_engine: Engine, model: str, loras: list, message: str) -> None:
    loads = lora_engine.adapters.loads
    with pytest.raises(lora.LoraError) as caught:
        lora_engine.run(_request(model, loras=loras))
    assert message in str(caught.value)
    # Nothing was loaded on the way to the refusal.
    assert lora_engine.adapters.loads == loads


def test_a_file_that_does_not_fit_the_model_is_refused_cleanly(tmp_path: Path, tiny_registry: ModelRegistry,
                                                               tiny_loras: Path) -> None:  # noqa: F811
    """No family hint in the file (a text-encoder-only LoRA with the wrong width): the load fails,
    the member hears which LoRA, and the pipeline is left as it was."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(tiny_loras / "sd15" / "kohya-style.safetensors"))
    broken = {k: v for k, v in state.items() if k.startswith("lora_te_")}
    broken = {k: (v[:, :16].contiguous() if k.endswith("lora_down.weight") else v) for k, v in broken.items()}
    save_file(broken, str(tmp_path / "broken.safetensors"))
    engine = Engine(tiny_registry, device="cpu", lora_dir=tmp_path)
    before = engine.run(_request())
    with pytest.raises(lora.LoraError, match="LoRA 'broken' could not be applied to tiny-sd15: ") as caught:
        engine.run(_request(loras=[("broken", 1.0)]))
    # The library's own words (layer names, tensor shapes) go to the log only (issue 14 item 11).
    internals = str(caught.value.__cause__).strip().splitlines()[0]
    assert internals and internals[:40] not in str(caught.value)
    assert engine.run(_request()).images[0].png == before.images[0].png


def test_loras_off_when_no_folder(tiny_registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATELIER_LORA_DIR", raising=False)
    engine = Engine(tiny_registry, device="cpu")
    assert engine.loras is None
    with pytest.raises(lora.LoraError, match="LoRAs are turned off on this worker: ATELIER_LORA_DIR is not set"):
        engine.run(_request(loras=[("sd15/kohya-style", 1.0)]))


def test_folder_comes_from_the_environment(tiny_registry: ModelRegistry, tiny_loras: Path,  # noqa: F811
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.engines import engine_factory
    from bot.settings import load_settings

    monkeypatch.setenv("ATELIER_LORA_DIR", str(tiny_loras))
    engine = engine_factory(load_settings(), tiny_registry)("cpu")
    assert engine.loras.root == tiny_loras  # type: ignore[union-attr]


@pytest.mark.parametrize(("header", "family"), [
    ({"__metadata__": {"ss_base_model_version": "sdxl_base_v1-0"}}, "sdxl"),
    ({"__metadata__": {"modelspec.architecture": "stable-diffusion-v1/lora"}}, "sd1"),
    ({"lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": {"shape": [4, 1280]}}, "sdxl"),
    ({"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight": {"shape": [4, 2048]}}, "sdxl"),
    ({"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": {"shape": [8, 768]}},
     "sd1"),
    ({"lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": {"shape": [4, 768]}}, "sd1"),
    ({"unet.mid_block.attentions.0.proj_in.lora_A.weight": {"shape": [4, 320]}}, None),
])
def test_family_hint_for_the_bot(header: dict, family: str | None) -> None:
    assert lora.family_hint(header) == family


def test_settings_lora_dir(tmp_path: Path) -> None:
    from bot.settings import SettingsError, load_settings

    assert load_settings(lora_dir=tmp_path).lora_dir == tmp_path
    assert load_settings(lora_dir="").lora_dir is None
    with pytest.raises(SettingsError, match=r"Invalid setting ATELIER_LORA_DIR: .*no such folder"):
        load_settings(lora_dir=tmp_path / "missing")


@pytest.mark.parametrize("body", [b"\xff\xfe not json", b"{ not json"])
def test_an_unreadable_file_is_refused_without_the_decoders_words(tmp_path: Path, body: bytes) -> None:
    """Issue 14 item 11: the member hears which LoRA and that it is unreadable; the parser's own
    message (byte offsets, codec names) is not theirs to read."""
    import struct

    (tmp_path / "garbled.safetensors").write_bytes(struct.pack("<Q", len(body)) + body)
    with pytest.raises(lora.LoraError) as caught:
        lora.prepare(lora.library(str(tmp_path)), [("garbled", 1.0)], kind="sd15", model="tiny-sd15",
                     model_width=768)
    message = str(caught.value)
    assert message.startswith("LoRA 'garbled' is not a readable .safetensors file")
    assert "codec" not in message and "char 0" not in message and "position" not in message
