"""/imagine, and what a member can do with its results: reroll by button or 🔄, vary (V1-V4), cancel.

With an ``image`` attachment /imagine runs image-to-image at ``strength``. ``lora`` picks a LoRA
from the owner's folder (ATELIER_LORA_DIR; autocompleted) at ``lora_weight``. The attachment is
fetched and checked (bot/params/attachments.py) before the job exists, so a bad file never leaves a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOption, UserFacingError
from bot.params import animate, attachments
from bot.params import images as studio
from bot.services.access import Place, check_use
from bot.services.jobs import ImagineOptions, Origin, Ticket
from bot.ui.tree import error_embed, is_nsfw
from cogs.views import JobButton, handles
from inference import lora as loras
from inference.limits import MAX_LORA_WEIGHT, MAX_STRENGTH, MIN_LORA_WEIGHT, MIN_STRENGTH
from inference.models import ASPECTS, TEXT_TO_IMAGE_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier
    from db.models import Job

log = logging.getLogger(__name__)

REROLL_EMOJI = "🔄"
# A reaction's pre-check asks whether the member has any credit left (a 1-credit job): the exact
# cost of a reroll, upscale or animation is reserved at submission.
SMALLEST_JOB = {"width": 512, "height": 512, "steps": 1, "count": 1}
# How long an attachment may take to fetch and check before the interaction is deferred: errors
# found within it are ephemeral; a slower download defers first (Discord allows 3 s) and goes on.
ATTACHMENT_GRACE = 2.0


async def load_attachment(interaction: discord.Interaction, attachment: discord.Attachment) -> attachments.InputImage:
    """Fetch and check an attachment, deferring the interaction if that takes a while. Downloads
    count against the member's per-minute limit (ATELIER_ATTACHMENTS_PER_MINUTE)."""
    limits = getattr(interaction.client, "limits", None)
    if limits is not None:
        limits.take("attachment", interaction.user.id)
    task = asyncio.ensure_future(attachments.load(attachment))
    done, _ = await asyncio.wait({task}, timeout=ATTACHMENT_GRACE)
    if not done:
        await interaction.response.defer(thinking=True)
    return await task


def origin_of(interaction: discord.Interaction) -> Origin:
    nsfw = is_nsfw(interaction.channel)
    return Origin(
        user_id=interaction.user.id, user_name=str(interaction.user), guild_id=interaction.guild_id,
        channel_id=interaction.channel_id, application_id=interaction.application_id,
        interaction_token=interaction.token, interaction_at=interaction.created_at,
        upload_limit=interaction.filesize_limit, nsfw_channel=nsfw,
    )


async def show_ticket(bot: Atelier, ticket: Ticket) -> None:
    delivery = bot.service.delivery
    extra = {"paused": True} if ticket.paused else {}
    message_id = await delivery.show_queued(ticket.job, ticket.position, ticket.total,  # type: ignore[union-attr]
                                            ticket.eta_seconds, **extra)
    if message_id is not None and ticket.job.message_id != message_id:
        await bot.service.attach_message(ticket.job.id, message_id)  # type: ignore[arg-type]


async def act_on_reaction(bot: Atelier, payload: discord.RawReactionActionEvent, *, emoji: str, verb: str,
                          start: Callable[[Job, Origin], Awaitable[Ticket]], completed_only: bool = True,
                          single_only: str | None = None, accepts: tuple[str, ...] | None = None) -> None:
    """The shared path of the result reactions (🔄, 🔍, 🎬): find the job behind the message, check
    the member may act (cooldown, access, ban, DMs, credits) before anything is posted, then post a
    placeholder that the new job turns into its result (a reaction has no interaction to answer)
    and start the job for whoever reacted. A refusal goes to the member alone, by DM at most once a
    minute (or nowhere): a barred or broke member can't make the bot write in the channel.

    `single_only`: the reply for a grid, where the action needs one image (named by a button).
    `accepts`: the commands whose results the reaction acts on; by default the studio's, and for 🎬
    upscales too (animate.ANIMATABLE_COMMANDS): other results, upscales for 🔄 and 🔍, are ignored."""
    if str(payload.emoji) != emoji or bot.user is None or payload.user_id == bot.user.id:
        return
    if accepts is None:
        accepts = animate.ANIMATABLE_COMMANDS if emoji == "🎬" else studio.VARIABLE_COMMANDS
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
        ticket = await start(job, origin)
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


class Imagine(commands.Cog):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot

    @app_commands.command(name="imagine", description="Create an image from a text prompt")
    @app_commands.describe(
        prompt="What to draw: subject, setting, details, style",
        negative="What to keep out of the image (e.g. blurry, extra fingers)",
        model="Which model to use (default: the server's default)",
        aspect="Shape of the image",
        steps="Denoising steps (more is slower; each model has its own range)",
        guidance="How closely to follow the prompt (CFG scale)",
        seed="Reuse a seed to reproduce an image",
        count="How many images (1-4; more than one is posted as a grid)",
        image="Start from this image instead of noise (image-to-image)",
        strength=f"With an image: how far to move away from it ({MIN_STRENGTH:g} subtle - {MAX_STRENGTH:.1f} ignore it; "
                 f"default {studio.DEFAULT_STRENGTH:g})",
        lora="A style or character add-on (LoRA) from the bot's collection; off unless the owner set one up",
        lora_weight=f"How strongly the LoRA applies ({MIN_LORA_WEIGHT:g}-{MAX_LORA_WEIGHT:g}; default {loras.DEFAULT_WEIGHT:g})",
        quality="fast: a distilled model or fewer steps, a few times quicker and a little rougher",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS],
                          quality=[app_commands.Choice(name=q, value=q) for q in ("standard", "fast")])
    async def imagine(self, interaction: discord.Interaction[Atelier], prompt: str, negative: str | None = None,
                      model: str | None = None, aspect: str | None = None, steps: int | None = None,
                      guidance: float | None = None, seed: int | None = None, count: int = 1,
                      image: discord.Attachment | None = None, strength: float | None = None,
                      lora: str | None = None,
                      lora_weight: app_commands.Range[float, MIN_LORA_WEIGHT, MAX_LORA_WEIGHT] | None = None,
                      quality: str | None = None) -> None:
        service = self.bot.service
        # Validation is pure and fast, so bad options get an ephemeral answer before any defer.
        options = ImagineOptions(prompt=prompt, negative=negative, model=model, aspect=aspect, steps=steps,
                                 guidance=guidance, seed=seed, count=count, lora=lora, lora_weight=lora_weight,
                                 lora_dir=self.bot.settings.lora_dir, quality=quality)
        params = service.prepare_imagine(options)
        strength = studio.check_strength(strength, has_image=image is not None)
        if image is not None:
            loaded = await load_attachment(interaction, image)
            params = await studio.imagine_from_image(service, options, loaded, strength)
        origin = origin_of(interaction)
        await service.precheck(params, origin)
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        ticket = await service.submit(command="imagine", params=params, origin=origin)
        await show_ticket(self.bot, ticket)

    @imagine.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        current = current.lower().strip()
        choices = []
        for spec in self.bot.registry.specs():
            if spec.kind not in TEXT_TO_IMAGE_KINDS:
                continue
            if current in spec.name.lower() or current in spec.kind.lower():
                label = f"{spec.name} ({spec.kind})"
                choices.append(app_commands.Choice(name=label[:100], value=spec.name))
        return choices[:25]

    @imagine.autocomplete("lora")
    async def lora_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The folder's LoRAs matching what was typed; nothing when LoRAs are off (the option says so)."""
        folder = self.bot.settings.lora_dir
        if folder is None:
            return []
        # A listing walks the folder (cached for a few seconds): off the event loop.
        names = await asyncio.to_thread(loras.library(str(folder)).search, current, 25)
        return [app_commands.Choice(name=name[:100], value=name) for name in names if len(name) <= 100]

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await act_on_reaction(self.bot, payload, emoji=REROLL_EMOJI, verb="Rerolling", completed_only=False,
                              start=lambda job, origin: self.bot.service.reroll(job_id=job.id, origin=origin))  # type: ignore[arg-type]


@handles("reroll")
async def reroll_button(interaction: discord.Interaction[Atelier], job_id: int, index: int = 0) -> None:
    await interaction.response.defer(thinking=True)
    ticket = await interaction.client.service.reroll(job_id=job_id, origin=origin_of(interaction))
    await show_ticket(interaction.client, ticket)


@handles("vary")
async def vary_button(interaction: discord.Interaction[Atelier], job_id: int, index: int = 0) -> None:
    """V1-V4: a strong variation of that image, same prompt and options, new seed."""
    await _vary(interaction, job_id, index, studio.STRONG)


@handles("subtle")
async def subtle_button(interaction: discord.Interaction[Atelier], job_id: int, index: int = 0) -> None:
    await _vary(interaction, job_id, index, studio.SUBTLE)


async def _vary(interaction: discord.Interaction[Atelier], job_id: int, index: int, strength: float) -> None:
    await interaction.response.defer(thinking=True)
    ticket = await studio.variation(interaction.client.service, job_id=job_id, index=index, strength=strength,
                                    origin=origin_of(interaction))
    await show_ticket(interaction.client, ticket)


@handles("cancel")
async def cancel_button(interaction: discord.Interaction[Atelier], job_id: int, index: int = 0) -> None:
    perms = interaction.permissions
    previous = await interaction.client.service.cancel(job_id=job_id, user_id=interaction.user.id,
                                                       is_admin=perms.manage_guild, guild_id=interaction.guild_id)
    text = "Canceled." if previous == "queued" else "Stopping after the current step."
    await interaction.response.send_message(f"Job #{job_id}: {text}", ephemeral=True)


async def setup(bot: Atelier) -> None:
    bot.add_dynamic_items(JobButton)
    await bot.add_cog(Imagine(bot))
