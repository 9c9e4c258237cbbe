"""Pytest fixtures and a bot runner for the fake Discord.

Use with ``from tests.fakediscord.fixtures import fake`` or
``pytest_plugins = ["tests.fakediscord.fixtures"]`` in the top-level ``tests/conftest.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest_asyncio

from .server import FakeDiscord

TOKEN = "fake.bot.token"


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started, patched fake Discord per test; unpatched and stopped afterwards."""
    server = FakeDiscord()
    await server.start()
    server.patch_discord()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def running(bot: discord.Client, fake: FakeDiscord, *, timeout: float = 5.0
                  ) -> AsyncIterator[discord.Client]:
    """Start ``bot`` against ``fake``, wait until it is ready, and shut it down in the safe order:
    bot first, then its task; the fake is stopped by its own fixture afterwards.

    Build the bot with ``guild_ready_timeout=0.05`` or start-up waits 2 s for more guilds. An
    AutoShardedBot with several shards is ready once every shard is; discord.py waits 5 s before
    each IDENTIFY after the first unless ``before_identify_hook`` says otherwise (Atelier takes
    ``identify_interval=0``).
    """
    task = asyncio.create_task(bot.start(TOKEN), name="fakediscord-bot")
    try:
        waiter = asyncio.ensure_future(fake.wait_identified(timeout))
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()  # re-raises why the bot stopped
            raise RuntimeError("bot.start returned before identifying")
        waiter.result()
        await asyncio.wait_for(bot.wait_until_ready(), timeout)
        yield bot
    finally:
        await bot.close()
        try:
            await asyncio.wait_for(task, timeout)
        except (asyncio.CancelledError, TimeoutError):
            task.cancel()
