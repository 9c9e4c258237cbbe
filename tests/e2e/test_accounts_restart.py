"""Restart safety: the bot in its own process is SIGKILLed with one job running and five queued;
started again on the same database file, every job completes and is delivered exactly once, and
the credit ledger balances."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import discord
import pytest

from tests.e2e.helpers import has_image as _has_image

ROOT = Path(__file__).resolve().parents[2]


def _query(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


class BotProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, step_seconds: float) -> None:
        env = {**self.env, "ATELIER_TEST_STEP_SECONDS": str(step_seconds)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.accounts.bot_process"], cwd=ROOT, env=env,
                                     stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def stop(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


async def _identified(fake, proc: BotProcess, log: Path) -> None:  # type: ignore[no-untyped-def]
    def ready(f) -> bool:  # type: ignore[no-untyped-def]
        assert proc.proc.poll() is None, f"the bot process exited:\n{log.read_text()[-3000:]}"
        return any(s.identified for s in f.gateway.sessions)

    await fake.wait_for(ready, timeout=120)


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
async def test_sigkill_mid_job_then_restart_completes_every_job_once(fake, tiny_models, tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "atelier.db"
    runs = tmp_path / "runs.log"
    runs.touch()
    env = {
        **os.environ, "DISCORD_TOKEN": "fake.bot.token", "ATELIER_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "ATELIER_MODELS": str(tiny_models), "ATELIER_DEVICES": "cpu", "ATELIER_SYNC_GUILD": str(fake.guild_id),
        "ATELIER_PROGRESS_INTERVAL": "0.05", "ATELIER_LOG_LEVEL": "INFO",
        "ATELIER_TEST_API_BASE": discord.http.Route.BASE,
        "ATELIER_TEST_GATEWAY": str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY),
        "ATELIER_TEST_RUN_LOG": str(runs), "ATELIER_DEFAULT_DAILY_CREDITS": "100",
        "ATELIER_COOLDOWN": "0",  # six commands in a row from one member
    }
    log = tmp_path / "bot.log"
    bot = BotProcess(env, log)
    try:
        bot.start(step_seconds=0.3)
        await _identified(fake, bot, log)
        inters = []
        for n in range(6):  # 10 steps x 0.3 s: the first runs for 3 s while five wait
            inter = await fake.slash("imagine", {"prompt": f"survives a crash {n}", "steps": 10, "seed": n},
                                     user_id=fake.user_id, channel_id=fake.channel_id)
            await inter.wait_acked(5)
            inters.append(inter)
        await fake.wait_for(lambda f: all(i.original.embeds for i in inters), timeout=30)

        def mid_job(_) -> bool:  # type: ignore[no-untyped-def]
            rows = _query(db, "SELECT status, progress_step FROM jobs ORDER BY id")
            return len(rows) == 6 and rows[0][0] == "running" and rows[0][1] >= 1
        await fake.wait_for(mid_job, timeout=60)
        bot.stop(signal.SIGKILL)
        assert _query(db, "SELECT status, count(*) FROM jobs GROUP BY status ORDER BY status") == \
            [("queued", 5), ("running", 1)]
        assert runs.read_text() == "", "no job may have finished before the kill"
        await fake.wait_for(lambda f: not f.gateway.sessions, timeout=30)

        bot.start(step_seconds=0.01)
        await _identified(fake, bot, log)
        await fake.wait_for(lambda f: all(_has_image(i.original) for i in inters), timeout=120)
        await fake.wait_for(lambda f: _query(db, "SELECT count(*) FROM jobs WHERE delivered = 1") == [(6,)],
                            timeout=30)
    finally:
        bot.stop(signal.SIGINT)

    jobs = _query(db, "SELECT id, status, attempts, delivered, message_id FROM jobs ORDER BY id")
    assert [(s, d) for _, s, _, d, _ in jobs] == [("completed", 1)] * 6
    assert [a for _, _, a, _, _ in jobs] == [2, 1, 1, 1, 1, 1]  # only the killed job started twice
    ids = [j[0] for j in jobs]
    # Each job's pipeline finished exactly once, the interrupted one first and the rest in queue order.
    assert [int(x) for x in runs.read_text().split()] == ids
    # Delivered exactly once: each result is its interaction's own message, and nothing else carries an image.
    assert sorted(i.original.id for i in inters) == sorted(j[4] for j in jobs)
    images = [m for m in fake.channel_messages(fake.channel_id) if _has_image(m)]
    assert sorted(m.id for m in images) == sorted(i.original.id for i in inters)
    ledger = _query(db, "SELECT kind, count(*), sum(credits) FROM credit_ledger GROUP BY kind ORDER BY kind")
    assert ledger == [("charge", 6, 12), ("reserve", 6, 12)]  # 512² x 10 steps = 2 credits each; no refunds
    assert _query(db, "SELECT sum(used) FROM quota_usage") == [(12,)]
