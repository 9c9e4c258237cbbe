"""Styles for /imagine ``style:``: a prompt template and a negative prompt wrapped around the member's words.

The bot ships a set in ``bot/params/data/styles.toml``; a server's admins add their own with
``/admin styles`` (stored per server in the database, db/repositories/styles.py). A template holds
``{prompt}`` where the member's prompt goes; one without it gets the prompt in front, as A1111's
styles do. The styled prompt is what the model draws, what moderation judges and what the PNG
records. Pure Python: no discord, no database, no I/O after the first read of the data file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from bot.errors import InvalidOption
from inference.limits import MAX_STYLE_NAME as MAX_NAME
from inference.limits import MAX_STYLE_NEGATIVE as MAX_NEGATIVE
from inference.limits import MAX_STYLE_TEMPLATE as MAX_TEMPLATE

_DATA = Path(__file__).parent / "data" / "styles.toml"
PLACEHOLDER = "{prompt}"
_NAME = re.compile(rf"^[a-z0-9][a-z0-9-]{{0,{MAX_NAME - 1}}}$")


@dataclass(frozen=True, slots=True)
class Style:
    name: str
    prompt: str
    negative: str = ""

    def apply(self, prompt: str, negative: str) -> tuple[str, str]:
        """The styled prompt and the negative prompt with the style's negative after the member's."""
        styled = self.prompt.replace(PLACEHOLDER, prompt) if PLACEHOLDER in self.prompt else \
            f"{prompt}, {self.prompt}" if self.prompt else prompt
        negatives = ", ".join(part for part in (negative.strip(), self.negative.strip()) if part)
        return styled, negatives


def normalize(name: str) -> str:
    """``Line Art``, ``line_art`` and ``line-art`` are one style."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@cache
def builtin() -> dict[str, Style]:
    """The packaged styles by name, in the file's order."""
    with _DATA.open("rb") as handle:
        data = tomllib.load(handle)
    return {name: Style(name, str(table["prompt"]), str(table.get("negative", ""))) for name, table in data.items()}


def find(name: str, server: Mapping[str, Style] | None = None) -> Style:
    """The named style, the server's own first; an unknown name is refused with a few to choose from."""
    key = normalize(name)
    found = (server or {}).get(key) or builtin().get(key)
    if found is None:
        suggestions = ", ".join(search(key, server, limit=8)) or ", ".join(list(builtin())[:8])
        raise InvalidOption(f"Unknown style {name!r}; try one of: {suggestions} (the `style` option lists them all).")
    return found


def search(current: str, server: Mapping[str, Style] | None = None, *, limit: int = 25) -> list[str]:
    """Style names for autocomplete: the server's then the packaged ones, those starting with what
    was typed before those containing it."""
    typed = normalize(current)
    names = list(dict.fromkeys([*(server or {}), *builtin()]))
    starts = [name for name in names if name.startswith(typed)]
    contains = [name for name in names if typed in name and name not in starts]
    return (starts + contains)[:limit]


def check_new(name: str, prompt: str, negative: str, existing: Iterable[str]) -> Style:
    """A server's new style, checked: a fresh name of letters, digits and dashes, and short texts."""
    key = normalize(name)
    if not _NAME.fullmatch(key):
        raise InvalidOption(f"A style name is 1-{MAX_NAME} letters, digits and dashes; {name!r} is not.")
    if key in builtin():
        raise InvalidOption(f"{key!r} is one of the bot's own styles; choose another name.")
    if key in set(existing):
        raise InvalidOption(f"This server already has a style {key!r}; remove it first to change it.")
    prompt, negative = prompt.strip(), negative.strip()
    if not prompt:
        raise InvalidOption(f"The style's prompt is empty; write a template such as `{PLACEHOLDER}, watercolor`.")
    if len(prompt) > MAX_TEMPLATE or len(negative) > MAX_NEGATIVE:
        raise InvalidOption(f"A style's prompt is at most {MAX_TEMPLATE} characters and its negative "
                            f"{MAX_NEGATIVE}.")
    if prompt.count(PLACEHOLDER) > 1:
        raise InvalidOption(f"Put `{PLACEHOLDER}` in the style's prompt once, where the member's prompt goes.")
    return Style(key, prompt, negative)
