"""Single-file checkpoints, ATELIER_MODELS_DIR, preload and out-of-memory, end to end through the fake Discord."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from inference.media import read_parameters
from inference.runners import RUNNERS
from tests.e2e.helpers import has_image


async def _imagine(fake, **options: Any):  # type: ignore[no-untyped-def]
    inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", "seed": 5, "steps": 2, **options},
                             user_id=fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    return inter


def _fields(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed["fields"]}


async def test_single_file_checkpoints_draw_through_imagine(fake, start_bot, single_file_models: Path) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(models=single_file_models):
        choices = await fake.autocomplete("imagine", {"prompt": "x", "model": "tiny"}, focused="model")
        await choices.wait_acked(3)
        assert {"tiny-sd15-file", "tiny-pony"} <= {c["value"] for c in choices.choices}
        for model in ("tiny-pony", "tiny-sd15-file"):
            inter = await _imagine(fake, model=model)
            await inter.wait_for(lambda i: has_image(i.original), timeout=120)
            params = read_parameters(inter.original.attachments[0].data)
            file = single_file_models.parent / "checkpoints" / (
                "pony/tiny-pony.safetensors" if model == "tiny-pony" else "tiny sd15 model.safetensors")
            assert f"Model hash: {hashlib.sha256(file.read_bytes()).hexdigest()[:10]}, Model: {model}" in params


async def test_a_checkpoint_dropped_in_the_models_dir_is_a_model(fake, start_bot, single_file_models: Path,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    shutil.copy(single_file_models.parent / "checkpoints" / "pony" / "tiny-pony.safetensors",
                tmp_path / "My Dropped Model.safetensors")
    async with start_bot(models=single_file_models, models_dir=tmp_path) as bot:
        assert bot.registry.get("My-Dropped-Model").kind == "sdxl"
        choices = await fake.autocomplete("imagine", {"prompt": "x", "model": "dropped"}, focused="model")
        await choices.wait_acked(3)
        assert [c["value"] for c in choices.choices] == ["My-Dropped-Model"]
        inter = await _imagine(fake, model="My-Dropped-Model")
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        assert "Model: My-Dropped-Model" in read_parameters(inter.original.attachments[0].data)


async def test_preload_loads_the_default_model_before_the_bot_is_online(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(preload=None) as bot:
        assert [(r.name, r.where) for r in bot.pool.residents()] == [("tiny-sd15", "device")]
        stats = await fake.slash("admin stats", {}, user_id=fake.owner_id, channel_id=fake.channel_id)
        await stats.wait_acked(3)
        loaded = _fields(stats.original.embeds[0])["Models loaded"]
        assert loaded.startswith("`tiny-sd15` on cpu, ") and loaded.endswith(" GB")


async def test_a_job_that_does_not_fit_is_told_so_and_refunded(fake, start_bot, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    calls = []

    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setitem(RUNNERS, "sd15", out_of_memory)
    async with start_bot(default_daily_credits=10) as bot:
        inter = await _imagine(fake)
        await inter.wait_for(lambda i: i.original is not None and i.original.embeds
                             and "memory" in str(i.original.embeds[0]), timeout=60)
        text = str(inter.original.embeds[0])
        assert "does not fit in the GPU's memory" in text and "refunded" in text
        assert len(calls) == 3  # the first try, after freeing memory, with CPU offload
        await bot.service.drain()
        status = await bot.accounts.status(user_id=fake.user_id, guild_id=fake.guild_id)
        assert status.used == 0
