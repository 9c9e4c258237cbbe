"""LoRA slots (inference/hotswap.py): the UNet side of a LoRA swapped into fixed adapters gives the
images the ordinary adapters give, leaves nothing behind, and a LoRA the slots cannot take still
works the ordinary way, with a log line. Eager pipelines with slots put in by hand (the engine puts
them in only where it compiles; tests/inference/test_compile.py runs that path)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inference import hotswap
from inference.engine import Engine
from inference.models import ModelRegistry
from inference.types import GenerationRequest
from tests.lora_files import _lora_state, tiny_loras  # noqa: F401  (fixture)


def _job(model: str, *loras: tuple[str, float], count: int = 1) -> GenerationRequest:
    return GenerationRequest(job_id=1, model=model, prompt="a lighthouse", negative_prompt="blurry",
                             width=64, height=64, steps=2, seed=7, count=count, loras=list(loras))


def _pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def _slotted(registry: ModelRegistry, folder: Path, model: str, *, rank: int = 8, count: int = 2) -> Engine:
    engine = Engine(registry, "cpu", lora_dir=folder)
    engine.adapters.install_slots(engine.pipeline(model), rank=rank, count=count)
    return engine


@pytest.mark.parametrize(("model", "family"), [("tiny-sd15", "sd15"), ("tiny-sdxl", "sdxl")])
def test_slots_give_the_images_plain_adapters_give_and_leave_nothing_behind(
        tiny_registry: ModelRegistry, tiny_loras: Path, model: str, family: str) -> None:  # noqa: F811
    plain_way = Engine(tiny_registry, "cpu", lora_dir=tiny_loras, lora_cache=0)
    engine = _slotted(tiny_registry, tiny_loras, model)
    a, b = (f"{family}/kohya-style", 1.0), (f"{family}/diffusers-style", 0.6)
    jobs = [[a], [], [b], [a, b], [a]] if family == "sd15" else [[a], [], [b]]
    expected = {str(loras): _pixels(plain_way.run(_job(model, *loras)).images[0].png) for loras in jobs}
    for loras in jobs:
        got = _pixels(engine.run(_job(model, *loras)).images[0].png)
        # Rank 4 zero-padded to 8: the same sums, within float rounding.
        assert np.abs(got - expected[str(loras)]).max() <= 1, loras
    slots = hotswap.slots_of(engine.pipeline(model).unet)
    assert slots is not None and slots.swaps >= 2
    assert engine.adapters.loads == 2  # the text-encoder side, once per file; the UNet side went into slots
    # The job after LoRA jobs: bit-identical to a run that never saw one.
    assert engine.run(_job(model)).images[0].png == plain_way.run(_job(model)).images[0].png


def _targets_other_layers(tiny_registry: ModelRegistry, folder: Path) -> None:
    """A LoRA on the ResNet blocks' time projections: layers the slots do not cover."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    unet = UNet2DConditionModel.from_pretrained(tiny_registry.get("tiny-sd15").source, subfolder="unet")
    state = _lora_state(unet, ["time_emb_proj"], seed=5)
    save_file({f"unet.{key}": value.contiguous() for key, value in state.items()}, str(folder / "resnets.safetensors"))


def _mixed_alphas(folder: Path) -> None:
    """A kohya file whose layers were trained at different alphas (PEFT's hotswap refuses an alpha_pattern)."""
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "kohya-style.safetensors"))
    first = next(key for key in sorted(state) if key.startswith("lora_unet_") and key.endswith(".alpha"))
    state[first] = state[first] / 2
    save_file(state, str(folder / "mixed-alphas.safetensors"))


def test_loras_the_slots_cannot_take_still_work_and_say_why_in_the_log(
        tiny_registry: ModelRegistry, tiny_loras: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    folder = tmp_path / "loras"
    folder.mkdir()
    for name in ("kohya-style", "diffusers-style"):
        (folder / f"{name}.safetensors").write_bytes((tiny_loras / "sd15" / f"{name}.safetensors").read_bytes())
    _targets_other_layers(tiny_registry, folder)
    _mixed_alphas(folder)
    plain_way = Engine(tiny_registry, "cpu", lora_dir=folder, lora_cache=0)
    plain = plain_way.run(_job("tiny-sd15")).images[0].png
    # Rank 2 slots: the tiny LoRAs' rank 4 does not fit; one slot: a second LoRA has none left.
    small = _slotted(tiny_registry, folder, "tiny-sd15", rank=2, count=1)
    roomy = _slotted(tiny_registry, folder, "tiny-sd15", rank=8, count=1)
    cases = [(small, [("kohya-style", 1.0)], "rank 4 is above the slots' 2"),
             (roomy, [("resnets", 1.0)], "unexpected keys"),
             (roomy, [("mixed-alphas", 0.8)], "Configs are incompatible: for alpha_pattern"),
             (roomy, [("kohya-style", 1.0), ("diffusers-style", 0.6)], "more LoRAs than the 1 slots")]
    for engine, loras, reason in cases:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="inference.adapters"):
            got = _pixels(engine.run(_job("tiny-sd15", *loras)).images[0].png)
        assert reason in caplog.text, caplog.text
        expected = _pixels(plain_way.run(_job("tiny-sd15", *loras)).images[0].png)
        assert np.abs(got - expected).max() <= 1 and np.abs(got - _pixels(plain)).max() > 8
        # The job's own adapters are gone again: the UNet is back to its slots, as compiled.
        names = set().union(*engine.pipeline("tiny-sd15").get_list_adapters().values())
        assert not {name for name in names if name.startswith("atelier_own")}
        assert engine.run(_job("tiny-sd15")).images[0].png == plain
    # Said once per file, not on every job.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="inference.adapters"):
        small.run(_job("tiny-sd15", ("kohya-style", 1.0)))
    assert "does not fit" not in caplog.text


def test_the_engine_puts_slots_in_only_where_it_compiles_with_loras(tiny_registry: ModelRegistry,
                                                                    tiny_loras: Path) -> None:  # noqa: F811
    compiled = Engine(tiny_registry, "cpu", lora_dir=tiny_loras, compile_mode="regional", compile_backend="eager")
    slots = hotswap.slots_of(compiled.pipeline("tiny-sd15").unet)
    assert slots is not None and len(slots.names) == hotswap.DEFAULT_SLOTS and slots.rank == hotswap.DEFAULT_RANK
    assert hotswap.slots_of(Engine(tiny_registry, "cpu", lora_dir=tiny_loras).pipeline("tiny-sd15").unet) is None
    no_loras = Engine(tiny_registry, "cpu", compile_mode="regional", compile_backend="eager")
    assert hotswap.slots_of(no_loras.pipeline("tiny-sd15").unet) is None
    # The warm-up also runs each shape with a slot on, so a member's first LoRA job compiles nothing.
    compiled.plan_warm_up("tiny-sd15", [(64, 64)])
    assert [entry[3:] for entry in compiled.warm_up] == [(1, False), (2, False), (1, True), (2, True)]


def test_a_files_unet_and_text_encoder_parts_and_its_rank_in_every_layout() -> None:
    import torch

    state = {
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(16, 32, 1, 1),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 16, 1, 1),
        "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(8.0),
        "unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight": torch.zeros(4, 32),
        "unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight": torch.zeros(32, 4),
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(128, 32),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(32, 128),
        "text_encoder.text_model.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(128, 32),
    }
    unet, text = hotswap.split(state)
    assert set(text) == {key for key in state if key.startswith(("lora_te", "text_encoder."))}
    assert set(unet) == set(state) - set(text) and len(unet) == 5
    # "down"/"up" in block names (down_blocks, up_blocks) are not the matrices: the UNet's rank is 16.
    assert hotswap.rank_of(unet) == 16 and hotswap.rank_of(text) == 128
