"""The metrics endpoint listens on this machine only unless told otherwise (issue 14, item 10)."""

from __future__ import annotations

import socket

from bot.metrics import Metrics
from bot.settings import load_settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_bind_the_loopback_address_by_default() -> None:
    assert load_settings().metrics_host == "127.0.0.1"
    metrics = Metrics()
    metrics.start(None, port=_free_port(), refresh_seconds=3600)  # type: ignore[arg-type]
    try:
        assert metrics.address == "127.0.0.1"
    finally:
        await metrics.stop()


def test_the_metrics_host_is_a_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_METRICS_HOST", "0.0.0.0")
    assert load_settings().metrics_host == "0.0.0.0"
