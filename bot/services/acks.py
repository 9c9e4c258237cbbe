"""Acknowledgements first: work that follows an acknowledgement waits while others still need theirs.

Discord gives an interaction 3 s to be acknowledged; everything after that (storing the job, the
queue-position embed) can be a moment late without anyone noticing. Under a burst (a busy server,
a popular button) the event loop otherwise interleaves the acknowledgement of command 200 with the
database writes and message edits of commands 1-199, and the last acknowledgements come late.
The command tree registers every incoming command here; post-acknowledgement work (JobService.submit)
calls `quiet()` first, which returns once no registered command is still unanswered, or after
`max_wait` so nothing starves. No discord import: an interaction is anything with
``id`` and ``response.is_done()``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

# An interaction older than this can no longer be acknowledged (Discord allows 3 s): stop waiting for it.
ACK_WINDOW = 3.0


class AckGate:
    def __init__(self, *, max_wait: float = 1.0, poll: float = 0.005) -> None:
        self.max_wait = max_wait
        self.poll = poll
        self._pending: dict[int, tuple[float, Any]] = {}
        self._swept_at = -ACK_WINDOW
        self._calm: asyncio.Future[None] | None = None  # resolved by the one sweeper once none is pending
        self._sweeper: asyncio.Task[None] | None = None

    def received(self, interaction: Any) -> None:
        self._pending[interaction.id] = (asyncio.get_running_loop().time(), interaction)

    def finished(self, interaction: Any) -> None:
        self._pending.pop(interaction.id, None)

    def unanswered(self) -> int:
        """How many registered interactions still await their acknowledgement (forgets the answered).

        Looks at them at most once a ``poll``: in a burst every command asks, and asking each of
        200 interactions for each of 200 commands was most of the burst's CPU."""
        now = asyncio.get_running_loop().time()
        if now - self._swept_at >= self.poll:
            self._swept_at = now
            for key, (since, interaction) in list(self._pending.items()):
                if interaction.response.is_done() or now - since > ACK_WINDOW:
                    del self._pending[key]
        return len(self._pending)

    async def quiet(self) -> None:
        """Return when no registered interaction is waiting for its acknowledgement (at most max_wait).

        Every waiter waits on one future, resolved by one sweeper task polling every ``poll``
        (discord.py has no hook for "this interaction was answered")."""
        if not self.unanswered():
            return
        if self._calm is None or self._calm.done():
            self._calm = asyncio.get_running_loop().create_future()
            self._sweeper = asyncio.ensure_future(self._sweep(self._calm))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._calm), self.max_wait)

    async def _sweep(self, calm: asyncio.Future[None]) -> None:
        try:
            # Polled: discord.py has no hook for "answered". Ends: one is forgotten after ACK_WINDOW.
            while self.unanswered():  # noqa: ASYNC110
                await asyncio.sleep(self.poll)
        finally:
            if not calm.done():
                calm.set_result(None)
