"""/imagine, and what a member can do with its results: reroll by button or 🔄, vary (V1-V4), cancel.

With an ``image`` attachment /imagine runs image-to-image at ``strength``. ``lora``, ``lora2`` and
``lora3`` pick LoRAs from the owner's folder (ATELIER_LORA_DIR; autocompleted) at their weights.
``style`` wraps the prompt in a packaged or server style (bot/params/styles.py), ``sampler`` takes
A1111's sampler names; wildcards and embeddings come from the owner's folders. The attachment is
fetched and checked (bot/params/attachments.py) before the job exists, so a bad file never leaves a job.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOption
from bot.params import blend as blending
from bot.params import images, styles
from bot.params.imagine import ImagineOptions
from bot.services.training import CHOICE_PREFIX
from bot.ui import preferences as member_defaults
from bot.ui.buttons import handles
from bot.ui.feature import Feature, described, model_choices
from bot.ui.submit import act_on_reaction, load_attachment, load_named, start, submit
from inference import lora as loras
from inference.limits import (
    DEFAULT_HIRES_STRENGTH,
    DEFAULT_STYLE_WEIGHT,
    HIRES_FACTORS,
    MAX_LORA_WEIGHT,
    MAX_STRENGTH,
    MIN_LORA_WEIGHT,
    MIN_STRENGTH,
    STYLE_WEIGHT_RANGE,
)
from inference.models import A1111_SAMPLERS, ASPECTS, TEXT_TO_IMAGE_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

REROLL_EMOJI = "🔄"
Weight = app_commands.Range[float, MIN_LORA_WEIGHT, MAX_LORA_WEIGHT]


class Imagine(Feature):
    @app_commands.command(name="imagine", description="Create an image from a text prompt")
    @app_commands.describe(
        **described("seed", "count"),
        prompt="What to draw: subject, setting, details, style",
        negative="What to keep out of the image (e.g. blurry, extra fingers)",
        model="Which model to use (default: yours from /settings, else the server's)",
        aspect="Shape of the image (default: yours from /settings, else square)",
        steps="Denoising steps (more is slower; each model has its own range)",
        guidance="How closely to follow the prompt (CFG scale)",
        image="Start from this image instead of noise (image-to-image)",
        strength=f"With an image: how far to move away from it ({MIN_STRENGTH:g} subtle - {MAX_STRENGTH:.1f} ignore it; "
                 f"default {images.DEFAULT_STRENGTH:g})",
        lora="A style or character add-on (LoRA) from the bot's collection; off unless the owner set one up",
        lora_weight=f"How strongly the LoRA applies ({MIN_LORA_WEIGHT:g}-{MAX_LORA_WEIGHT:g}; default {loras.DEFAULT_WEIGHT:g})",
        quality="fast: a distilled model or fewer steps, a few times quicker and a little rougher",
        style="A style wrapped around your prompt (photographic, anime, watercolor, ...; the server's own too)",
        sampler="The sampler, as A1111 names it (default: the model's own)",
        lora2="A second LoRA", lora2_weight=f"How strongly the second LoRA applies (default {loras.DEFAULT_WEIGHT:g})",
        lora3="A third LoRA", lora3_weight=f"How strongly the third LoRA applies (default {loras.DEFAULT_WEIGHT:g})",
        hires="Hires fix: draw, enlarge 1.5x or 2x, then redraw the details at the larger size",
        hires_strength=f"With hires: how much the second pass redraws ({MIN_STRENGTH:g}-{MAX_STRENGTH:g}; "
                       f"default {DEFAULT_HIRES_STRENGTH:g})",
        tile="Seamless tile: the image wraps around at its edges (for textures and patterns)",
        style_ref="Keep the style of this image (colours, strokes, mood), not its subject (IP-Adapter)",
        style_weight=f"How strongly the style applies ({STYLE_WEIGHT_RANGE[0]:g}-{STYLE_WEIGHT_RANGE[1]:g}; "
                     f"default {DEFAULT_STYLE_WEIGHT:g})",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS],
                          quality=[app_commands.Choice(name=q, value=q) for q in ("standard", "fast")],
                          sampler=[app_commands.Choice(name=name, value=name) for name in A1111_SAMPLERS],
                          hires=[app_commands.Choice(name=f"{f:g}x", value=f) for f in HIRES_FACTORS])
    async def imagine(self, interaction: discord.Interaction[Atelier], prompt: str, negative: str | None = None,
                      model: str | None = None, aspect: str | None = None, steps: int | None = None,
                      guidance: float | None = None, seed: int | None = None, count: int = 1,
                      image: discord.Attachment | None = None, strength: float | None = None,
                      lora: str | None = None,
                      lora_weight: app_commands.Range[float, MIN_LORA_WEIGHT, MAX_LORA_WEIGHT] | None = None,
                      quality: str | None = None, style: str | None = None, sampler: str | None = None,
                      lora2: str | None = None, lora2_weight: Weight | None = None,
                      lora3: str | None = None, lora3_weight: Weight | None = None, hires: float | None = None,
                      hires_strength: app_commands.Range[float, MIN_STRENGTH, MAX_STRENGTH] | None = None,
                      tile: bool = False, style_ref: discord.Attachment | None = None,
                      style_weight: float | None = None) -> None:
        # A member's own (or their server's shared) trained LoRA, from /train (bot/services/training.py).
        mine = await self.bot.training.chosen(user_id=interaction.user.id, guild_id=interaction.guild_id, value=lora)
        # Validation is fast, so bad options get an ephemeral answer before any defer.
        settings = self.bot.settings
        options = ImagineOptions(prompt=prompt, negative=negative, model=model, aspect=aspect, steps=steps,
                                 guidance=guidance, seed=seed, count=count, lora=None if mine else lora,
                                 lora_weight=None if mine else lora_weight,
                                 lora_dir=settings.lora_dir, quality=quality, style=style, sampler=sampler,
                                 server_styles=await self.bot.styles.for_guild(interaction.guild_id) if style else {},
                                 lora2=lora2, lora2_weight=lora2_weight, lora3=lora3, lora3_weight=lora3_weight,
                                 wildcards_dir=settings.wildcards_dir, embeddings_dir=settings.embeddings_dir,
                                 hires=hires, hires_strength=hires_strength, tile=tile)
        options = await member_defaults.imagine_options(interaction, options)  # /settings, /admin defaults
        if image is not None and hires is not None:
            raise InvalidOption("Hires fix is for text-to-image; with an image, leave hires out (or /upscale the "
                                "result).")
        # Off the loop: wildcard files and LoRA headers are read.
        params = await asyncio.to_thread(self.bot.service.prepare_imagine, options)
        if mine is not None:
            spec = self.bot.registry.get(params["model"])
            params = self.bot.training.apply(params, mine, weight=lora_weight, model_kind=spec.kind, model=spec.name)
        strength = images.check_strength(strength, has_image=image is not None)
        style_weight = blending.check_style_weight(style_weight, has_reference=style_ref is not None)
        if style_ref is not None:
            blending.check_model(self.bot.registry, self.bot.registry.get(params["model"]), what="`style_ref`")
        if image is not None:
            loaded = await load_attachment(interaction, image)
            params = await images.imagine_from_image(params, self.bot.registry.get(params["model"]), loaded, strength)
        if style_ref is not None:
            reference = await load_named(interaction, "style_ref", style_ref)
            params = await blending.style_params(params, reference, DEFAULT_STYLE_WEIGHT if style_weight is None
                                                 else style_weight)
        await submit(interaction, "imagine", params)

    @imagine.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in TEXT_TO_IMAGE_KINDS), current,
                             label=lambda spec: f"{spec.name} ({spec.kind})", match_kind=True)

    @imagine.autocomplete("style")
    async def style_autocomplete(self, interaction: discord.Interaction[Atelier], current: str
                                 ) -> list[app_commands.Choice[str]]:
        """This server's styles, then the packaged ones, matching what was typed."""
        mine = await self.bot.styles.for_guild(interaction.guild_id)
        return [app_commands.Choice(name=name, value=name) for name in styles.search(current, mine)]

    @imagine.autocomplete("lora")
    @imagine.autocomplete("lora2")
    @imagine.autocomplete("lora3")
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
