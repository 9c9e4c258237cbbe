"""The running bot recovers from faults within its sweep (issue 14, item 15), end to end."""

from __future__ import annotations

import threading

from db.models import JobStatus
from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image


class _HangsOnce(ScriptedEngine):
    """The first pipeline call never returns (until the test ends); later ones run normally."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.hung = False

    def run(self, request, on_step=None, is_cancelled=None):  # type: ignore[no-untyped-def]
        if not self.hung:
            self.hung = True
            self.release.wait(30)
        return super().run(request, on_step, is_cancelled)


def _text(message) -> str:  # type: ignore[no-untyped-def]
    parts = [message.content or ""]
    for embed in message.embeds:
        parts += [embed.get("description", "")] + [f["value"] for f in embed.get("fields", [])]
    return " ".join(parts)


async def test_a_pipeline_run_that_never_returns_is_failed_by_the_watchdog(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = _HangsOnce()
    try:
        async with start_bot(engine_factory=engine.factory, job_timeout=0.5) as bot:
            first = await fake.slash("imagine", {"prompt": "hangs"}, user_id=fake.user_id, channel_id=fake.channel_id)
            await first.wait_acked(3)
            await first.wait_for(lambda i: i.original is not None and "took too long" in _text(i.original), timeout=20)
            job = await bot.service.job_for_message(first.original.id)
            assert job.status == JobStatus.failed and "took too long" in job.error
            second = await fake.slash("imagine", {"prompt": "runs"}, user_id=fake.user_id, channel_id=fake.channel_id)
            await second.wait_acked(3)
            await second.wait_for(lambda i: has_image(i.original), timeout=20)  # the device went on
            engine.release.set()  # the abandoned thread may end now
    finally:
        engine.release.set()
