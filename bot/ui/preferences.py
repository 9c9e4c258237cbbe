"""A command's view of the member's defaults (bot/services/preferences.py): read once per
interaction and kept on it, so the options, the acknowledgement and the job agree.

Private results: the acknowledgement ("thinking…"), the queue card and the result are ephemeral,
seen by the member alone; when the interaction token has expired before the result is ready,
delivery sends it by DM instead of to the channel (bot/ui/delivery.py).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import discord

from bot.params.imagine import ImagineOptions
from bot.services.preferences import Defaults

if TYPE_CHECKING:
    from bot.client import Atelier

# The key under which an interaction keeps its member's effective defaults.
DEFAULTS = "atelier.defaults"


async def defaults_of(interaction: discord.Interaction[Atelier]) -> Defaults:
    """The member's defaults over the server's, read once per interaction."""
    found = interaction.extras.get(DEFAULTS)
    if found is None:
        found = await interaction.client.preferences.effective(interaction.user.id, interaction.guild_id)
        interaction.extras[DEFAULTS] = found
    return found  # type: ignore[no-any-return]


async def imagine_options(interaction: discord.Interaction[Atelier], options: ImagineOptions) -> ImagineOptions:
    """/imagine's options with the member's (then the server's) defaults where none was given. A
    default style may be one of this server's own: their styles are read for it."""
    defaults = await defaults_of(interaction)
    if options.style is None and defaults.style and not options.server_styles:
        options = dataclasses.replace(options, server_styles=await interaction.client.styles.for_guild(
            interaction.guild_id))
    return interaction.client.preferences.imagine_options(options, defaults)


async def is_private(interaction: discord.Interaction[Atelier]) -> bool:
    return bool((await defaults_of(interaction)).private)
