"""The `duration` option of /mod ban and /admin ban-global: '30m', '12h', '7d', '1w', '1d12h', or
empty / 'permanent' for a ban with no end."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.errors import InvalidOption

_DURATION = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | None) -> timedelta | None:
    if text is None or text.strip().lower() in {"", "permanent", "forever"}:
        return None
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidOption(f"I can't read the duration {text!r}: use e.g. 30m, 12h, 7d, 1w or permanent.")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def ban_until(duration: str | None) -> datetime | None:
    """When a ban given now for ``duration`` ends; None for a permanent one."""
    length = parse_duration(duration)
    return datetime.now(UTC) + length if length else None
