"""End-to-end fixtures: the real Atelier bot, on tiny models, connected to the fake Discord."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.client import Atelier
from bot.settings import load_settings
from tests.fakediscord import FakeDiscord
from tests.fakediscord.fixtures import running

BotStarter = Callable[..., contextlib.AbstractAsyncContextManager[Atelier]]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'atelier.db'}"


@pytest.fixture
def start_bot(fake: FakeDiscord, tiny_models: Path, db_url: str) -> BotStarter:
    """`async with start_bot() as bot:` runs a fresh bot; call it again for a restart on the same database
    (or nest two calls with their own ``shard_ids`` for two processes sharing the database)."""

    @contextlib.asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Atelier]:
        settings = load_settings(**{
            "discord_token": "fake.bot.token", "database_url": db_url, "models": tiny_models, "devices": "cpu",
            "progress_interval": 0.05, "sync_guild": fake.guild_id, "moderation_semantic": False,
            "preload": "none", "cooldown": 0, **overrides,  # tests act faster than people: a test of the cooldown sets one
        })
        engine_factory = overrides.pop("engine_factory", None)
        # identify_interval=0: with several shards discord.py would wait 5 s before each IDENTIFY after the first.
        bot = Atelier(settings, engine_factory=engine_factory, guild_ready_timeout=0.05, identify_interval=0.0)
        async with running(bot, fake, timeout=30) as ready:
            yield ready  # type: ignore[misc]
        assert fake.unknown_routes == [], f"the bot called routes the fake does not know: {fake.unknown_routes}"

    return start
