"""Run the real bot (`python -m bot run`) in its own process against a fake Discord in the test process.

Test-only hooks, read from the environment (never part of the product):
- ATELIER_TEST_API_BASE, ATELIER_TEST_GATEWAY: where the fake's REST API and gateway listen;
- ATELIER_TEST_STEP_SECONDS: the scripted engine's time per step (slow enough to be killed mid-job);
- ATELIER_TEST_RUN_LOG: a file each finished engine run appends its job id to.

Usage: python -m tests.accounts.bot_process
"""

from __future__ import annotations

import os
import sys

import discord
import yarl

import bot.client
from bot.__main__ import main
from tests.accounts.engines import ScriptedEngine


class LoggedEngine(ScriptedEngine):
    def run(self, request, on_step=None, is_cancelled=None):  # type: ignore[no-untyped-def]
        result = super().run(request, on_step, is_cancelled)
        with open(os.environ["ATELIER_TEST_RUN_LOG"], "a") as log:
            log.write(f"{request.job_id}\n")
        return result


def patch() -> None:
    discord.http.Route.BASE = os.environ["ATELIER_TEST_API_BASE"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["ATELIER_TEST_GATEWAY"])
    engine = LoggedEngine(step_seconds=float(os.environ.get("ATELIER_TEST_STEP_SECONDS", "0")))
    bot.client.engine_factory = lambda settings, registry: engine.factory  # type: ignore[assignment]


if __name__ == "__main__":
    patch()
    sys.exit(main(["run"]))
