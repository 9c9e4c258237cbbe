"""The one path from an interaction (a command, a button) or a reaction to a queued job on screen.

Commands check their options first (pure and fast, so a refusal is private and nothing waits),
then hand the parameters to `submit`; buttons and reactions that start work from a result go
through `start` and `act_on_reaction`. Either way the interaction is acknowledged once, the job
service queues the job, and the ticket (place in line, estimated start) replaces the "thinking"
placeholder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.errors import InvalidOption, UserFacingError
from bot.params import animate, attachments, images
from bot.services.access import Place, check_use
from bot.services.jobs import Origin, Ticket
from bot.ui.preferences import is_private
from bot.ui.tree import PROMPT_VERDICT, error_embed, is_nsfw

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

# A reaction's pre-check asks whether the member has any credit left (a 1-credit job): the exact
# cost of a reroll, upscale or animation is reserved at submission.
SMALLEST_JOB = {"width": 512, "height": 512, "steps": 1, "count": 1}
# How long an attachment may take to fetch and check before the interaction is deferred: errors
# found within it are ephemeral; a slower download defers first (Discord allows 3 s) and goes on.
ATTACHMENT_GRACE = 2.0

Start = Callable[[Origin], Awaitable[Ticket]]


def origin_of(interaction: discord.Interaction) -> Origin:
    nsfw = is_nsfw(interaction.channel)
    return Origin(
        user_id=interaction.user.id, user_name=str(interaction.user), guild_id=interaction.guild_id,
        channel_id=interaction.channel_id, application_id=interaction.application_id,
        interaction_token=interaction.token, interaction_at=interaction.created_at,
        upload_limit=interaction.filesize_limit, nsfw_channel=nsfw,
        prompt_verdict=interaction.extras.get(PROMPT_VERDICT),
    )


async def load_attachment(interaction: discord.Interaction[Atelier],
                          attachment: discord.Attachment) -> attachments.InputImage:
    """Fetch and check an attachment, deferring the interaction if that takes a while. Downloads
    count against the member's per-minute limit (ATELIER_ATTACHMENTS_PER_MINUTE)."""
    interaction.client.limits.take("attachment", interaction.user.id)
    task = asyncio.ensure_future(attachments.load(attachment))
    done, _ = await asyncio.wait({task}, timeout=ATTACHMENT_GRACE)
    if not done and not interaction.response.is_done():  # a command with several images defers once
        await interaction.response.defer(thinking=True, ephemeral=await is_private(interaction))
    return await task


async def load_named(interaction: discord.Interaction[Atelier], option: str,
                     attachment: discord.Attachment) -> attachments.InputImage:
    """``load_attachment`` for a command with several images: a refusal names the option it concerns."""
    try:
        return await load_attachment(interaction, attachment)
    except InvalidOption as exc:
        raise InvalidOption(f"`{option}` ({attachment.filename[:60]}): {exc.message}") from None


async def submit(interaction: discord.Interaction[Atelier], command: str, params: dict[str, Any]) -> None:
    """Queue a command's job: the checks that can still refuse privately (place, credits), then
    acknowledge, submit and show the ticket."""
    service = interaction.client.service
    origin = origin_of(interaction)
    await service.precheck(params, origin)
    await start(interaction, lambda origin: service.submit(command=command, params=params, origin=origin), origin)


async def start(interaction: discord.Interaction[Atelier], begin: Start, origin: Origin | None = None) -> None:
    """Acknowledge (unless a slow attachment already did), start the work and show its ticket.
    A member with private results (/settings private) gets an ephemeral acknowledgement and result."""
    origin = origin or origin_of(interaction)
    origin.private = await is_private(interaction)
    if not interaction.response.is_done():
        await interaction.response.defer(thinking=True, ephemeral=origin.private)
    ticket = await begin(origin)
    await show_ticket(interaction.client, ticket)


async def show_ticket(bot: Atelier, ticket: Ticket) -> None:
    delivery = bot.service.delivery
    extra = {"paused": True} if ticket.paused else {}
    message_id = await delivery.show_queued(ticket.job, ticket.position, ticket.total,  # type: ignore[union-attr]
                                            ticket.eta_seconds, **extra)
    if message_id is not None and ticket.job.message_id != message_id:
        await bot.service.attach_message(ticket.job.id, message_id)  # type: ignore[arg-type]


# What 🔄 and 🔍 act on: the studio's results and the edits of them (/edit, Zoom Out, the pan arrows,
# Vary (Region)), which have Reroll and Upscale buttons too. Not images.VARIABLE_COMMANDS itself: that
# also decides what V buttons vary, and an inpaint job is no text-to-image job to vary.
REACTION_COMMANDS = (*images.VARIABLE_COMMANDS, "edit")


async def act_on_reaction(bot: Atelier, payload: discord.RawReactionActionEvent, *, emoji: str, verb: str,
                          begin: Callable[[int, Origin], Awaitable[Ticket]], completed_only: bool = True,
                          single_only: str | None = None) -> None:
    """The shared path of the result reactions (🔄, 🔍, 🎬): find the job behind the message, check
    the member may act (cooldown, access, ban, DMs, credits) before anything is posted, then post a
    placeholder that the new job turns into its result (a reaction has no interaction to answer)
    and start the job (``begin(job_id, origin)``) for whoever reacted. A refusal goes to the member
    alone, by DM at most once a minute (or nowhere): a barred or broke member can't make the bot
    write in the channel.

    `single_only`: the reply for a grid, where the action needs one image (named by a button).
    The reaction acts on the studio's results and their edits (REACTION_COMMANDS), and 🎬 on upscales
    too (animate.ANIMATABLE_COMMANDS): other results, upscales for 🔄 and 🔍, are ignored."""
    if str(payload.emoji) != emoji or bot.user is None or payload.user_id == bot.user.id:
        return
    accepts = animate.ANIMATABLE_COMMANDS if emoji == "🎬" else REACTION_COMMANDS
    job = await bot.service.job_for_message(payload.message_id)
    if job is None or job.command not in accepts:
        return
    if completed_only and job.status != "completed":
        return
    channel = bot.get_channel(payload.channel_id) or await bot.fetch_channel(payload.channel_id)
    origin = Origin(user_id=payload.user_id, guild_id=payload.guild_id, channel_id=payload.channel_id,
                    nsfw_channel=is_nsfw(channel))
    try:
        bot.limits.cooldown(payload.user_id)
        check_use(job, Place(payload.user_id, payload.guild_id, origin.nsfw_channel))
        await bot.moderation.ensure_not_banned(payload.guild_id, payload.user_id)
        await bot.service.precheck(SMALLEST_JOB, origin)  # the DM policy, and any credit left at all
        if single_only is not None and int(job.params.get("count", 1)) > 1:
            raise InvalidOption(single_only.format(job=job, count=job.params["count"]))
    except UserFacingError as exc:
        await tell_privately(bot, payload.user_id, exc)
        return
    placeholder = await channel.send(  # type: ignore[union-attr]
        content=f"{emoji} {verb} job #{job.id} for <@{payload.user_id}>…",
        allowed_mentions=discord.AllowedMentions.none())
    origin.message_id = placeholder.id
    try:
        ticket = await begin(job.id, origin)  # type: ignore[arg-type]
    except UserFacingError as exc:  # refused at submission (e.g. the exact cost): the placeholder goes
        await tell_privately(bot, payload.user_id, exc)
        try:
            await placeholder.delete()
        except discord.HTTPException:
            log.warning("could not remove the placeholder of a refused reaction in %s", payload.channel_id)
        return
    await show_ticket(bot, ticket)


async def tell_privately(bot: Atelier, user_id: int, error: UserFacingError) -> None:
    """Say why a reaction did nothing, to the member alone: by DM, at most once a minute, or not at all
    (closed DMs). A reaction has no interaction to answer ephemerally."""
    if not bot.limits.may_notify(user_id):
        return
    try:
        user = bot.get_user(user_id) or await bot.fetch_user(user_id)
        await user.send(embed=error_embed(error.title, error.message))
    except discord.HTTPException as exc:
        log.debug("could not tell %s why their reaction was refused: %s", user_id, exc)
