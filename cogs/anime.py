"""/anime: Animagine XL from Danbooru tags, reordered the way the model was trained (bot/params/anime.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.params import anime
from bot.services.preferences import Preferences
from bot.ui import preferences as member_defaults
from bot.ui.feature import Feature, described
from bot.ui.submit import submit

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

_ASPECT_CHOICES = [
    app_commands.Choice(name=f"{aspect} ({w}×{h})", value=aspect) for aspect, (w, h) in anime.RESOLUTIONS.items()
]


class Anime(Feature):
    @app_commands.command(name="anime", description="Anime art from Danbooru tags with Animagine XL")
    @app_commands.describe(
        **described("seed", "count"),
        prompt="Comma-separated tags, e.g. 1girl, hatsune miku, vocaloid, smile, night sky",
        negative="Tags to keep out (default: Animagine's recommended negative prompt)",
        aspect="Shape: Animagine's recommended resolutions",
    )
    @app_commands.choices(aspect=_ASPECT_CHOICES)
    async def anime(self, interaction: discord.Interaction[Atelier], prompt: str, negative: str | None = None,
                    aspect: str | None = None, seed: int | None = None, count: int = 1) -> None:
        defaults = await member_defaults.defaults_of(interaction)  # /settings: aspect and negative where fitting
        params = anime.prepare(self.bot.service, prompt=prompt, negative=Preferences.negative(negative, defaults),
                               aspect=Preferences.aspect(aspect, defaults, tuple(anime.RESOLUTIONS)), seed=seed,
                               count=count)
        await submit(interaction, "anime", params)


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Anime(bot))
