"""The bot end to end with remote GPU workers and with its metrics endpoint (fake Discord, tiny models).

With ATELIER_REDIS_URL the bot's pool is a RemotePool and an `atelier worker` process (the real
engine, tiny models) makes the image; without it, the embedded pool does, and /metrics shows the job.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.client import Atelier
from bot.settings import load_settings
from inference.pool import InferencePool
from inference.remote import RemotePool
from tests.e2e.helpers import has_image as _has_image
from tests.fakediscord.fixtures import running
from tests.scale.conftest import REDIS_URL
from tests.scale.test_remote import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _bot(fake: Any, tiny_models: Path, tmp_path: Path, **overrides: Any) -> AsyncIterator[Atelier]:
    settings = load_settings(**{
        "discord_token": "fake.bot.token", "database_url": f"sqlite+aiosqlite:///{tmp_path / 'atelier.db'}",
        "models": tiny_models, "devices": "cpu", "progress_interval": 0.05, "sync_guild": fake.guild_id,
        "moderation_semantic": False, "nsfw_image_check": False, **overrides,
    })
    bot = Atelier(settings, guild_ready_timeout=0.05)
    async with running(bot, fake, timeout=30) as ready:
        yield ready  # type: ignore[misc]


def _start_worker(queue: str, models: Path) -> subprocess.Popen[bytes]:
    """`atelier worker` with the real engine on the tiny models."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "worker", "--queue", queue, "--devices", "cpu",
         "--sweep-seconds", "2"],
        cwd=ROOT, env={**os.environ, "ATELIER_REDIS_URL": REDIS_URL, "ATELIER_MODELS": str(models)})


async def _imagine(fake: Any) -> Any:
    inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", "seed": 7, "steps": 2},
                             user_id=fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    return inter


async def test_with_a_redis_url_the_bot_dispatches_to_a_worker_process(  # type: ignore[no-untyped-def]
        fake, tiny_models: Path, tmp_path: Path, redis_queue: str) -> None:
    worker = _start_worker(redis_queue, tiny_models)
    try:
        async with _bot(fake, tiny_models, tmp_path, redis_url=REDIS_URL, redis_queue=redis_queue) as bot:
            assert isinstance(bot.pool, RemotePool)
            inter = await _imagine(fake)
            await inter.wait_for(lambda i: _has_image(i.original), timeout=120)
            await bot.service.drain()
            job = await bot.service.get_job(1)
            assert job is not None and job.status == "completed" and job.delivered and job.worker == "main/remote"
            assert worker.poll() is None
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            worker.kill()


async def test_the_metrics_endpoint_shows_a_finished_job(fake, tiny_models: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = _free_port()
    async with _bot(fake, tiny_models, tmp_path, metrics_port=port) as bot:
        assert isinstance(bot.pool, InferencePool)
        assert bot.metrics is not None and bot.metrics.address == "127.0.0.1"  # this machine only by default
        inter = await _imagine(fake)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=120)
        await bot.service.drain()
        assert bot.metrics is not None
        await bot.metrics.refresh_queue(bot.service.sessions)
        url = f"http://127.0.0.1:{port}/metrics"
        text = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read())).decode()
    assert 'atelier_jobs_total{command="imagine",outcome="completed"} 1.0' in text
    assert 'atelier_job_wait_seconds_count{command="imagine"} 1.0' in text
    assert 'atelier_job_run_seconds_count{command="imagine"} 1.0' in text
    assert "atelier_jobs_running 0.0" in text and "atelier_gpu_memory_bytes" in text


def test_the_redis_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_REDIS_URL", "rediss://:hunter2@gpu.example:6380/0")
    settings = load_settings()
    assert settings.redis_url is not None and "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    monkeypatch.setenv("ATELIER_REDIS_URL", "http://:hunter2@gpu.example")
    with pytest.raises(Exception) as caught:
        load_settings()
    assert "ATELIER_REDIS_URL" in str(caught.value) and "hunter2" not in str(caught.value)
