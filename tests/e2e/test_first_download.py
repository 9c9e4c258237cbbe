"""A model's first use downloads it from the hub (a fake one, tests/fakehub.py) while its member watches."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from db.repositories import accounts as accounts_repo
from tests.e2e.helpers import has_image
from tests.fakehub import FakeHub, hub_registry, repo_from, serving, use_hub

REPO = "atelier-test/tiny-sd15"


@pytest.fixture
def hub_models(tiny_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeHub, Path]]:
    fake_hub = FakeHub()
    fake_hub.add(REPO, repo_from(tiny_models.parent / "tiny-sd15", tmp_path / "repo"))
    with serving(fake_hub):
        use_hub(monkeypatch, fake_hub, tmp_path / "hf-cache")
        yield fake_hub, hub_registry(tmp_path / "models.toml", REPO)


def _embeds(inter) -> str:  # type: ignore[no-untyped-def]
    return str(inter.original.embeds) if inter.original is not None else ""


async def test_first_use_downloads_and_the_queue_message_says_so(fake, start_bot, hub_models) -> None:  # type: ignore[no-untyped-def]
    fake_hub, models = hub_models
    fake_hub.delay = 0.2  # each file takes a moment: the member's message shows the download under way
    async with start_bot(models=models) as bot:
        inter = await fake.slash("imagine", {"prompt": "a lighthouse", "seed": 3}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: "Loading hub-sd15 for the first time: 0.0 / 0.0 GB" in _embeds(i), timeout=60)
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        await bot.service.drain()
    fetched = fake_hub.downloads()
    assert any(p.endswith("unet/diffusion_pytorch_model.safetensors") for p in fetched)
    assert not any(p.endswith((".bin", ".ckpt")) or "v1-5-pruned" in p for p in fetched)


async def test_a_dropped_connection_tells_the_member_and_refunds(fake, start_bot, hub_models, caplog) -> None:  # type: ignore[no-untyped-def]
    fake_hub, models = hub_models
    caplog.set_level(logging.INFO, logger="bot.services.failures")
    fake_hub.drop.add(f"{REPO}/unet/diffusion_pytorch_model.safetensors")
    async with start_bot(models=models) as bot:
        inter = await fake.slash("imagine", {"prompt": "a lighthouse", "seed": 3}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: "the model hub could not be reached" in _embeds(i), timeout=60)
        await bot.service.drain()
        async with bot.service.sessions() as s:
            totals = await accounts_repo.ledger_totals(s)
    assert totals["reserve"] > 0 and totals["refund"] == totals["reserve"] and totals["charge"] == 0
    assert "refunded" in _embeds(inter)
    (line,) = [r for r in caplog.records if r.name == "bot.services.failures" and "failed (network)" in r.getMessage()]
    assert line.levelno == logging.WARNING and REPO in line.getMessage() and line.exc_info is None


async def test_a_process_that_warmed_up_the_semantic_layer_still_downloads(fake, start_bot, hub_models) -> None:  # type: ignore[no-untyped-def]
    from moderation.semantic import model_installed

    if not model_installed():
        pytest.skip("the MiniLM wheel is not installed")
    fake_hub, models = hub_models
    async with start_bot(models=models, moderation_semantic=True) as bot:
        await bot._warmup  # the MiniLM model loaded before the first job
        assert bot.moderation.semantic_ready
        inter = await fake.slash("imagine", {"prompt": "a lighthouse", "seed": 3}, user_id=fake.user_id,
                                 channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: has_image(i.original), timeout=120)
        await bot.service.drain()
    assert fake_hub.downloads()
