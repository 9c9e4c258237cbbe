"""/imagine, and what a member can do with its results: reroll by button or 🔄, vary (V1-V4), cancel.

With an ``image`` attachment /imagine runs image-to-image at ``strength``. ``lora`` picks a LoRA
from the owner's folder (ATELIER_LORA_DIR; autocompleted) at ``lora_weight``. The attachment is
fetched and checked (bot/params/attachments.py) before the job exists, so a bad file never leaves a job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.params import images
from bot.params.imagine import ImagineOptions
from bot.services.training import CHOICE_PREFIX
from bot.ui.buttons import handles
from bot.ui.feature import Feature, described, model_choices
from bot.ui.submit import act_on_reaction, load_attachment, start, submit
from inference import lora as loras
from inference.limits import MAX_LORA_WEIGHT, MAX_STRENGTH, MIN_LORA_WEIGHT, MIN_STRENGTH
from inference.models import ASPECTS, TEXT_TO_IMAGE_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

REROLL_EMOJI = "🔄"


class Imagine(Feature):
    @app_commands.command(name="imagine", description="Create an image from a text prompt")
    @app_commands.describe(
        **described("seed", "count"),
        prompt="What to draw: subject, setting, details, style",
        negative="What to keep out of the image (e.g. blurry, extra fingers)",
        model="Which model to use (default: the server's default)",
        aspect="Shape of the image",
        steps="Denoising steps (more is slower; each model has its own range)",
        guidance="How closely to follow the prompt (CFG scale)",
        image="Start from this image instead of noise (image-to-image)",
        strength=f"With an image: how far to move away from it ({MIN_STRENGTH:g} subtle - {MAX_STRENGTH:.1f} ignore it; "
                 f"default {images.DEFAULT_STRENGTH:g})",
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
        # A member's own (or their server's shared) trained LoRA, from /train (bot/services/training.py).
        mine = await self.bot.training.chosen(user_id=interaction.user.id, guild_id=interaction.guild_id, value=lora)
        # Validation is pure and fast, so bad options get an ephemeral answer before any defer.
        options = ImagineOptions(prompt=prompt, negative=negative, model=model, aspect=aspect, steps=steps,
                                 guidance=guidance, seed=seed, count=count, lora=None if mine else lora,
                                 lora_weight=None if mine else lora_weight,
                                 lora_dir=self.bot.settings.lora_dir, quality=quality)
        params = self.bot.service.prepare_imagine(options)
        if mine is not None:
            spec = self.bot.registry.get(params["model"])
            params = self.bot.training.apply(params, mine, weight=lora_weight, model_kind=spec.kind, model=spec.name)
        strength = images.check_strength(strength, has_image=image is not None)
        if image is not None:
            loaded = await load_attachment(interaction, image)
            params = await images.imagine_from_image(params, self.bot.registry.get(params["model"]), loaded, strength)
        await submit(interaction, "imagine", params)

    @imagine.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in TEXT_TO_IMAGE_KINDS), current,
                             label=lambda spec: f"{spec.name} ({spec.kind})", match_kind=True)

    @imagine.autocomplete("lora")
    async def lora_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The member's own and their server's shared LoRAs (/train), then the folder's, matching what was typed."""
        mine = await self.bot.training.search(user_id=interaction.user.id, guild_id=interaction.guild_id, text=current)
        choices = [app_commands.Choice(name=e.label(interaction.user.id)[:100], value=f"{CHOICE_PREFIX}{e.id}")
                   for e in mine]
        folder = self.bot.settings.lora_dir
        if folder is None:
            return choices[:25]
        # A listing walks the folder (cached for a few seconds): off the event loop.
        names = await asyncio.to_thread(loras.library(str(folder)).search, current, 25)
        choices += [app_commands.Choice(name=name[:100], value=name) for name in names if len(name) <= 100]
        return choices[:25]

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await act_on_reaction(self.bot, payload, emoji=REROLL_EMOJI, verb="Rerolling", completed_only=False,
                              begin=lambda job_id, origin: self.bot.service.reroll(job_id=job_id, origin=origin))


@handles("reroll")
async def reroll_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    await start(interaction, lambda origin: interaction.client.service.reroll(job_id=job_id, origin=origin))


@handles("vary")
async def vary_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    """V1-V4: a strong variation of that image, same prompt and options, new seed."""
    await start(interaction, lambda origin: interaction.client.derived.variation(
        job_id=job_id, index=index, strength=images.STRONG, origin=origin))


@handles("subtle")
async def subtle_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    await start(interaction, lambda origin: interaction.client.derived.variation(
        job_id=job_id, index=index, strength=images.SUBTLE, origin=origin))


@handles("cancel")
async def cancel_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    perms = interaction.permissions
    previous = await interaction.client.service.cancel(job_id=job_id, user_id=interaction.user.id,
                                                       is_admin=perms.manage_guild, guild_id=interaction.guild_id)
    text = "Canceled." if previous == "queued" else "Stopping after the current step."
    await interaction.response.send_message(f"Job #{job_id}: {text}", ephemeral=True)


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Imagine(bot))
