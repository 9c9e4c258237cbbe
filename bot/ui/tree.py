"""The command tree: the one place that turns errors into replies a member can act on.

Known errors (bot.errors.UserFacingError) become a short ephemeral message; anything else is
logged with its interaction and answered with a generic apology, never a traceback. When the
interaction can no longer be answered (expired token) the reply falls back to the channel.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.errors import Refused, UserFacingError
from bot.services.access import Place
from bot.services.acks import AckGate
from bot.ui.components import custom_id, layout

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

# Commands that only read or manage (ephemeral answers, nothing queued or posted) skip the member
# cooldown (ATELIER_COOLDOWN); every other command, including ones added later, counts.
COOLDOWN_FREE = frozenset({"quota", "queue", "cancel", "history", "forget", "help", "admin", "mod", "settings",
                           "loras"})
# The key under which the global check leaves its verdict on a prompt in `interaction.extras`, for
# the command's submission (cogs build its Origin with it), so the prompt is not judged again.
PROMPT_VERDICT = "atelier.prompt_verdict"


def error_embed(title: str, message: str) -> discord.Embed:
    return discord.Embed(title=title, description=message[:4000], colour=discord.Colour(0xE5534B))


class AtelierTree(app_commands.CommandTree["Atelier"]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acks = AckGate()

    def _from_interaction(self, interaction: discord.Interaction[Atelier]) -> None:
        # Called synchronously as each INTERACTION_CREATE is parsed, before its task runs: the gate
        # learns about a whole burst before any of it is processed.
        self.acks.received(interaction)
        super()._from_interaction(interaction)

    async def _call(self, interaction: discord.Interaction[Atelier]) -> None:
        try:
            await super()._call(interaction)
        finally:
            self.acks.finished(interaction)

    async def interaction_check(self, interaction: discord.Interaction[Atelier], /) -> bool:
        """Global checks for every command: bans, then moderation of any prompt, before the cog runs.

        Refusals are answered here, ephemerally, before the command is deferred, so nothing is queued
        and nobody else sees the refused prompt. A prompt let through leaves its verdict in
        ``interaction.extras[PROMPT_VERDICT]``.
        """
        if interaction.type is not discord.InteractionType.application_command:
            return True
        moderation = getattr(interaction.client, "moderation", None)
        if moderation is None:
            return True
        try:
            await moderation.ensure_not_banned(interaction.guild_id, interaction.user.id)
            limits = getattr(interaction.client, "limits", None)
            if limits is not None and (interaction.data or {}).get("name") not in COOLDOWN_FREE:
                limits.cooldown(interaction.user.id)
            options = command_options(interaction.data or {})
            prompt = options.get("prompt")
            if isinstance(prompt, str) and prompt.strip():
                negative = options.get("negative")
                interaction.extras[PROMPT_VERDICT] = await moderation.precheck(
                    prompt, negative if isinstance(negative, str) else "", user_id=interaction.user.id,
                    guild_id=interaction.guild_id, channel_id=interaction.channel_id,
                    nsfw_channel=is_nsfw(interaction.channel))
        except UserFacingError as exc:
            await report_error(interaction, exc)
            return False
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await report_error(interaction, error)


def command_options(data: dict) -> dict[str, object]:  # type: ignore[type-arg]
    """Flatten a command's options (through subcommand groups) into name -> value."""
    found: dict[str, object] = {}
    stack = list(data.get("options", []))
    while stack:
        option = stack.pop()
        if "options" in option:
            stack.extend(option["options"])
        elif "value" in option:
            found[option["name"]] = option["value"]
    return found


async def screen_text(interaction: discord.Interaction[Atelier], text: str) -> None:
    """Text others will see that is no ``prompt`` option (a LoRA's name) through the prompt rules the
    global check applies to prompts: a refusal is recorded and raised the same way."""
    moderation = getattr(interaction.client, "moderation", None)
    if moderation is not None and text.strip():
        await moderation.precheck(text, "", user_id=interaction.user.id, guild_id=interaction.guild_id,
                                  channel_id=interaction.channel_id, nsfw_channel=is_nsfw(interaction.channel))


def is_nsfw(channel: object) -> bool:
    checker = getattr(channel, "is_nsfw", None)
    return bool(checker()) if callable(checker) else False


def place_of(interaction: discord.Interaction) -> Place:
    """Who pressed or typed, where: the access rules' view of an interaction (bot/services/access.py)."""
    manages = interaction.guild_id is not None and interaction.permissions.manage_guild
    return Place(interaction.user.id, interaction.guild_id, is_nsfw(interaction.channel), manages_guild=manages)


async def report_error(interaction: discord.Interaction, error: BaseException) -> None:
    """Reply to a failed command or button with one short, specific ephemeral message."""
    original = getattr(error, "original", error)
    view = None
    if isinstance(original, Refused):
        embed = error_embed(original.title, original.message)
        if original.case_id is not None:
            embed.set_footer(text=f"Case #{original.case_id} · If this is a mistake, ask the moderators to review it.")
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="Request review", style=discord.ButtonStyle.secondary,
                                            custom_id=custom_id("review", original.case_id)))
            view = layout(view)
    elif isinstance(original, UserFacingError):
        embed = error_embed(original.title, original.message)
    elif isinstance(original, app_commands.CheckFailure):
        embed = error_embed("Not allowed", str(original) or "You can't use this command here.")
    elif isinstance(original, app_commands.TransformerError):
        embed = error_embed("Check your options", f"{original.value!r} is not valid for this option.")
    else:
        log.error("unhandled error in %s by %s", _what(interaction), interaction.user.id, exc_info=original)
        embed = error_embed("Something went wrong", "That failed on our side and has been logged. Please try again.")
    await reply(interaction, embed=embed, view=view)


async def reply(interaction: discord.Interaction, *, embed: discord.Embed, view: discord.ui.View | None = None) -> None:
    extra = {"view": view} if view is not None else {}
    try:
        if not interaction.response.is_done():
            await interaction.response.send_message(embed=embed, ephemeral=True, **extra)
        else:
            await _drop_public_placeholder(interaction)
            await interaction.followup.send(embed=embed, ephemeral=True, **extra)
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


async def _drop_public_placeholder(interaction: discord.Interaction) -> None:
    """A command deferred publicly ("thinking...") and then failed (say, a quota check that ran
    after the acknowledgement): the first followup would replace the public placeholder, showing
    the refusal to the channel. Delete the placeholder first so the reply is a private message."""
    if interaction.response.type is not discord.InteractionResponseType.deferred_channel_message:
        return
    try:
        original = await interaction.original_response()
        if original.flags.loading and not original.flags.ephemeral:
            await original.delete()
    except discord.HTTPException as exc:
        log.debug("could not remove the deferred placeholder of %s: %s", _what(interaction), exc)


def _what(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data = interaction.data or {}
    return f"component {data.get('custom_id', '?')}"
