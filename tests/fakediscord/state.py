"""The fake's records: messages, attachments, interactions, and the clock that ages tokens.

These are plain objects that tests read directly (``fake.messages[id].content``); the JSON that
Discord would send is built from them in ``builders.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import FakeDiscord

DISCORD_EPOCH_MS = 1_420_070_400_000

# https://discord.com/developers/docs/resources/message#message-object-message-flags
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-object-interaction-type
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5

# Interaction tokens are valid for 15 minutes; the initial response must arrive within 3 seconds.
# https://discord.com/developers/docs/interactions/receiving-and-responding#responding-to-an-interaction
TOKEN_LIFETIME = 15 * 60


class Snowflakes:
    """Real-looking snowflakes (timestamp << 22 | counter) so ``discord.utils.snowflake_time`` works."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (next(self._counter) & 0x3FFFFF)


class Clock:
    """Monotonic time plus an offset that tests move with ``fake.advance(seconds)``."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class DiscordError(Exception):
    """An error response in Discord's shape: ``{"message": ..., "code": ...}`` with an HTTP status."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code, **self.extra}


@dataclass
class Attachment:
    id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    description: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Message:
    id: int
    channel_id: int
    author_id: int
    guild_id: int | None = None
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    edits: int = 0
    deleted: bool = False
    reactions: list[str] = field(default_factory=list)  # emoji the bot itself added, in order
    user_reactions: dict[str, set[int]] = field(default_factory=dict)  # emoji -> every user who reacted
    interaction_id: int | None = None
    webhook: bool = False
    message_reference: dict[str, Any] | None = None
    tts: bool = False
    poll: dict[str, Any] | None = None
    timestamp: str = ""
    edited_timestamp: str | None = None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def loading(self) -> bool:
        """True while this is a deferred response's "Bot is thinking..." placeholder."""
        return bool(self.flags & LOADING)

    @property
    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in iter_components(self.components) if "custom_id" in c]

    def find_component(self, custom_id: str) -> dict[str, Any] | None:
        return next((c for c in iter_components(self.components) if c.get("custom_id") == custom_id), None)


def iter_components(components: list[dict[str, Any]]):
    """Every component in a tree: action rows, sections (accessory), containers, labels."""
    for comp in components or []:
        yield comp
        yield from iter_components(comp.get("components") or [])
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), dict):
                yield from iter_components([comp[key]])


@dataclass
class Interaction:
    """What the fake knows about one interaction it sent and how the bot answered it."""

    fake: FakeDiscord = field(repr=False)
    id: int
    token: str
    type: int
    user_id: int
    channel_id: int
    guild_id: int | None
    payload: dict[str, Any] = field(repr=False)
    created_at: float = 0.0
    responses: list[dict[str, Any]] = field(default_factory=list)
    acked: bool = False
    acked_at: float | None = None  # clock.now() when the first response arrived (ack latency)
    ack_type: int | None = None
    ephemeral: bool = False
    deferred: bool = False
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    error_codes: list[int] = field(default_factory=list)
    choices: list[dict[str, Any]] | None = None
    modal: dict[str, Any] | None = None
    message_id: int | None = None  # the message a component interaction came from

    def expired(self) -> bool:
        return self.fake.clock.now() - self.created_at > TOKEN_LIFETIME

    def past_ack_deadline(self) -> bool:
        return self.fake.clock.now() - self.created_at > self.fake.ack_deadline

    @property
    def messages(self) -> list[Message]:
        """The original response (if any) followed by followups that are distinct messages."""
        out = [self.original] if self.original else []
        return out + [m for m in self.followups if m is not self.original]

    async def wait_acked(self, timeout: float = 5.0) -> Interaction:
        await self.fake.wait_for(lambda _: self.acked, timeout=timeout, what=f"interaction {self.id} ack")
        return self

    async def wait_for(self, predicate: Callable[[Interaction], Any], timeout: float = 10.0) -> Any:
        return await self.fake.wait_for(lambda _: predicate(self), timeout=timeout,
                                        what=f"predicate on interaction {self.id}")


class Changes:
    """Wakes every waiter on each state change (an Event swapped out on each notify)."""

    POLL = 0.02

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float, *, poll: bool = True) -> None:
        """Until the next change, or at most ``POLL`` seconds so predicates on the bot's own state
        (which the fake cannot see change) are re-checked too; ``poll=False`` for predicates on the
        fake's state alone (no wake-ups in between: benchmarks)."""
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), min(timeout, self.POLL) if poll else timeout)
        except TimeoutError:
            pass
