"""Abuse limits per member: a cooldown between actions and per-minute limits on costly reads.

A member who spams commands, buttons or reactions makes the bot post, queue and read for them;
these limits keep one member from filling a channel or the database's time. They are kept in this
process's memory (bounded): with several bot processes sharing a database each counts its own, which
is enough to stop a flood, since Discord sends one member's interactions in one server to one shard.
No discord import: callers pass ids.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from bot.errors import SlowDown

log = logging.getLogger(__name__)

MAX_TRACKED = 10_000
WINDOW = 60.0


class Limits:
    """``cooldown`` seconds between two actions of one member (0: off) and, per kind of action
    (``show``, ``export``, ``attachment``, ...), at most ``per_minute[kind]`` in any 60 s."""

    def __init__(self, *, cooldown: float = 0.0, per_minute: dict[str, int] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown_seconds = cooldown
        self.per_minute = dict(per_minute or {})
        self.clock = clock
        self._last: OrderedDict[int, float] = OrderedDict()
        self._recent: OrderedDict[tuple[str, int], deque[float]] = OrderedDict()
        self._notified: OrderedDict[int, float] = OrderedDict()

    def cooldown(self, user_id: int) -> None:
        """Count an action of the member; raise SlowDown if it comes within the cooldown of their last
        one (a refused action does not restart the wait)."""
        if self.cooldown_seconds <= 0:
            return
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.cooldown_seconds:
            wait = self.cooldown_seconds - (now - last)
            raise SlowDown(f"One thing at a time: try again in {max(wait, 0.1):.1f} s.")
        _remember(self._last, user_id, now)

    def take(self, kind: str, user_id: int) -> None:
        """Count one ``kind`` action of the member; raise SlowDown past its per-minute limit."""
        limit = self.per_minute.get(kind)
        if not limit or limit <= 0:
            return
        now = self.clock()
        key = (kind, user_id)
        times = self._recent.get(key) or deque()
        while times and now - times[0] >= WINDOW:
            times.popleft()
        if len(times) >= limit:
            wait = WINDOW - (now - times[0])
            times_word = "time" if limit == 1 else "times"
            raise SlowDown(f"You can do this {limit} {times_word} a minute; try again in {wait:.0f} s.")
        times.append(now)
        _remember(self._recent, key, times)

    def may_notify(self, user_id: int, every: float = WINDOW) -> bool:
        """Whether to tell the member privately about a refused reaction now: at most once a minute,
        so refusals can't be turned into a stream of direct messages either."""
        now = self.clock()
        last = self._notified.get(user_id)
        if last is not None and now - last < every:
            return False
        _remember(self._notified, user_id, now)
        return True


def _remember(store: OrderedDict, key: object, value: object) -> None:  # type: ignore[type-arg]
    store[key] = value
    store.move_to_end(key)
    while len(store) > MAX_TRACKED:
        store.popitem(last=False)
