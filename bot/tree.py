"""The command tree: the one place that turns errors into replies a member can act on.

Known errors (bot.errors.UserFacingError) become a short ephemeral message; anything else is
logged with its interaction and answered with a generic apology, never a traceback. When the
interaction can no longer be answered (expired token) the reply falls back to the channel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import UserFacingError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


def error_embed(title: str, message: str) -> discord.Embed:
    return discord.Embed(title=title, description=message[:4000], colour=discord.Colour(0xE5534B))


class AtelierTree(app_commands.CommandTree["Atelier"]):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Reply to a failed command or button with one short, specific ephemeral message."""
    original = getattr(error, "original", error)
    if isinstance(original, UserFacingError):
        embed = error_embed(original.title, original.message)
    elif isinstance(original, app_commands.CheckFailure):
        embed = error_embed("Not allowed", str(original) or "You can't use this command here.")
    elif isinstance(original, app_commands.TransformerError):
        embed = error_embed("Check your options", f"{original.value!r} is not valid for this option.")
    else:
        log.error("unhandled error in %s by %s", _what(interaction), interaction.user.id, exc_info=original)
        embed = error_embed("Something went wrong", "That failed on our side and has been logged. Please try again.")
    await reply(interaction, embed=embed)


async def reply(interaction: discord.Interaction, *, embed: discord.Embed) -> None:
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(embed=embed, ephemeral=True)
        else:
            await interaction.followup.send(embed=embed, ephemeral=True)
        return
    except discord.HTTPException as exc:
        if exc.status not in (401, 404):
            log.warning("could not reply to %s: %s", _what(interaction), exc)
            return
    # The interaction expired: say it in the channel instead, to that member only by mention.
    channel = interaction.channel
    if isinstance(channel, discord.abc.Messageable):
        try:
            await channel.send(content=interaction.user.mention, embed=embed,
                               allowed_mentions=discord.AllowedMentions(users=[interaction.user]))
        except discord.HTTPException:
            log.warning("could not report an error in channel %s", getattr(channel, "id", None))


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data = interaction.data or {}
    return f"component {data.get('custom_id', '?')}"
