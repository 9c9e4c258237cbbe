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
from typing import Any

# An interaction older than this can no longer be acknowledged (Discord allows 3 s): stop waiting for it.
ACK_WINDOW = 3.0


class AckGate:
    def __init__(self, *, max_wait: float = 1.0, poll: float = 0.005) -> None:
        self.max_wait = max_wait
        self.poll = poll
        self._pending: dict[int, tuple[float, Any]] = {}

    def received(self, interaction: Any) -> None:
        self._pending[interaction.id] = (asyncio.get_running_loop().time(), interaction)

    def finished(self, interaction: Any) -> None:
        self._pending.pop(interaction.id, None)

    def unanswered(self) -> int:
        """How many registered interactions still await their acknowledgement (forgets the answered)."""
        now = asyncio.get_running_loop().time()
        for key, (since, interaction) in list(self._pending.items()):
            if interaction.response.is_done() or now - since > ACK_WINDOW:
                del self._pending[key]
        return len(self._pending)

    async def quiet(self) -> None:
        """Return when no registered interaction is waiting for its acknowledgement (at most max_wait)."""
        if not self._pending:
            return
        deadline = asyncio.get_running_loop().time() + self.max_wait
        # Polled: discord.py has no hook for "this interaction was answered" (an Event would need one).
        while self.unanswered() and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(self.poll)
