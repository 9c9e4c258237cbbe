"""What the feature cogs share: a base class with the bot at hand, and the autocomplete of their
`model` options (the installed models of one family that match what the member has typed so far,
at most the 25 Discord shows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from discord import app_commands
from discord.ext import commands

from inference.models import ModelSpec

if TYPE_CHECKING:
    from bot.client import Atelier


class Feature(commands.Cog):
    """A cog of one feature; its services are reached through the bot (bot/client.py builds them)."""

    def __init__(self, bot: Atelier) -> None:
        self.bot = bot


def model_choices(specs: Iterable[ModelSpec], current: str, *, label: Callable[[ModelSpec], str] = lambda s: s.name,
                  match_kind: bool = False) -> list[app_commands.Choice[str]]:
    """Models whose name (or, with ``match_kind``, kind) contains ``current``, shown as ``label``."""
    typed = current.lower().strip()
    return [app_commands.Choice(name=label(spec)[:100], value=spec.name) for spec in specs
            if typed in spec.name.lower() or (match_kind and typed in spec.kind.lower())][:25]


# Options several commands take with the same meaning, described once so the commands read alike.
_SHARED_DESCRIPTIONS = {
    "seed": "Reuse a seed to reproduce an image",
    "count": "How many images (1-4; more than one is posted as a grid)",
}


def described(*options: str) -> dict[str, str]:
    """The shared descriptions of ``options``, for ``@app_commands.describe(**described("seed"), ...)``."""
    return {option: _SHARED_DESCRIPTIONS[option] for option in options}
