"""/loras: a member's own trained LoRAs (/train) - list, rename, share to this server, unshare, delete.

A LoRA is private to its owner until they share it on the server it was trained on; there,
moderators (Manage Messages) may unshare anyone's. /forget deletes them all, files included.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOption
from bot.ui.tree import screen_text

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)


class Loras(commands.GroupCog, group_name="loras", group_description="Your own LoRAs, made with /train"):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(name="list", description="Your LoRAs and those shared on this server")
    async def list_loras(self, interaction: discord.Interaction[Atelier]) -> None:
        entries = await self.bot.training.usable(user_id=interaction.user.id, guild_id=interaction.guild_id)
        if not entries:
            text = "You have no LoRAs yet: `/train` makes one from 5-30 images."
        else:
            lines = [f"**{e.name}** - {e.kind}, trigger `{e.trigger}`, {e.base_model}"
                     + (" (shared here)" if e.shared and e.owner_id == interaction.user.id else "")
                     + (f" (shared by <@{e.owner_id}>)" if e.owner_id != interaction.user.id else "")
                     for e in entries]
            text = "\n".join(lines)[:1900] + "\nUse one with `/imagine lora:` and its trigger word in the prompt."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="rename", description="Rename one of your LoRAs")
    @app_commands.describe(name="Your LoRA", new_name="Its new name")
    async def rename(self, interaction: discord.Interaction[Atelier], name: str, new_name: str) -> None:
        await screen_text(interaction, new_name)  # shown to others where the LoRA is shared
        await self.bot.training.rename(user_id=interaction.user.id, name=name, new_name=new_name)
        await interaction.response.send_message(f"Renamed **{name}** to **{' '.join(new_name.split())}**.",
                                                ephemeral=True)

    @app_commands.command(name="share", description="Let everyone on this server use one of your LoRAs")
    @app_commands.describe(name="Your LoRA (trained on this server)")
    @app_commands.guild_only()
    async def share(self, interaction: discord.Interaction[Atelier], name: str) -> None:
        entry = await self._named(interaction, name, own_only=True)
        await self.bot.training.share(actor_id=interaction.user.id, guild_id=interaction.guild_id, lora_id=entry.id,
                                      shared=True)
        await interaction.response.send_message(f"**{entry.name}** is now shared on this server.", ephemeral=True)

    @app_commands.command(name="unshare", description="Stop sharing a LoRA on this server (yours, or any for moderators)")
    @app_commands.describe(name="The LoRA")
    @app_commands.guild_only()
    async def unshare(self, interaction: discord.Interaction[Atelier], name: str) -> None:
        entry = await self._named(interaction, name, own_only=False)
        moderator = bool(interaction.permissions.manage_messages)
        await self.bot.training.share(actor_id=interaction.user.id, guild_id=interaction.guild_id, lora_id=entry.id,
                                      shared=False, moderator=moderator)
        log.info("LoRA %s unshared in guild %s by %s", entry.id, interaction.guild_id, interaction.user.id)
        await interaction.response.send_message(f"**{entry.name}** is no longer shared here.", ephemeral=True)

    @app_commands.command(name="delete", description="Delete one of your LoRAs (its file too)")
    @app_commands.describe(name="Your LoRA")
    async def delete(self, interaction: discord.Interaction[Atelier], name: str) -> None:
        await self.bot.training.delete(user_id=interaction.user.id, name=name)
        await interaction.response.send_message(f"Deleted **{name}**.", ephemeral=True)

    async def _named(self, interaction: discord.Interaction[Atelier], name: str, *, own_only: bool):  # type: ignore[no-untyped-def]
        entries = await self.bot.training.usable(user_id=interaction.user.id, guild_id=interaction.guild_id)
        typed = " ".join(name.split()).lower()
        found = [e for e in entries if e.name.lower() == typed and (e.owner_id == interaction.user.id or not own_only)]
        found.sort(key=lambda e: e.owner_id != interaction.user.id)
        if not found:
            raise InvalidOption(f"No LoRA named {name!r} here; /loras list shows them.")
        return found[0]

    @rename.autocomplete("name")
    @share.autocomplete("name")
    @unshare.autocomplete("name")
    @delete.autocomplete("name")
    async def name_autocomplete(self, interaction: discord.Interaction[Atelier], current: str
                                ) -> list[app_commands.Choice[str]]:
        entries = await self.bot.training.search(user_id=interaction.user.id, guild_id=interaction.guild_id,
                                                 text=current)
        return [app_commands.Choice(name=e.label(interaction.user.id)[:100], value=e.name) for e in entries]


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Loras(bot))
