"""/upscale, the U1-U4 buttons of a grid, and 🔍 on a result: Real-ESRGAN-class enlargement x2 or x4, or,
with ``upscaler:`` naming one, the Stable Diffusion x4 upscaler for small images."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.params import images
from bot.ui.buttons import handles
from bot.ui.feature import Feature, model_choices
from bot.ui.submit import act_on_reaction, load_attachment, start, submit
from inference.limits import UPSCALE_FACTORS, UPSCALE_MAX_INPUT

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

UPSCALE_EMOJI = "🔍"
# Buttons and reactions upscale x2: a 1024 px SDXL image becomes 2048 px, which fits the upload
# limit once re-encoded; /upscale offers x4.
BUTTON_SCALE = 2


class Upscale(Feature):
    @app_commands.command(name="upscale", description="Enlarge an image x2 or x4 (Real-ESRGAN, or SD x4 for small images)")
    @app_commands.describe(image="The image to enlarge (PNG, JPEG, WebP, GIF or BMP)",
                           scale=f"How much larger (x4 takes images up to {UPSCALE_MAX_INPUT[4] / 1e6:.0f} MP, "
                                 f"x2 up to {UPSCALE_MAX_INPUT[2] / 1e6:.0f} MP)",
                           upscaler="Which upscaler (default: Real-ESRGAN; SD x4 redraws small images, x4 only)")
    @app_commands.choices(scale=[app_commands.Choice(name=f"x{factor}", value=factor) for factor in UPSCALE_FACTORS])
    async def upscale(self, interaction: discord.Interaction[Atelier], image: discord.Attachment, scale: int = 4,
                      upscaler: str | None = None) -> None:
        images.check_scale(scale)
        images.upscaler_spec(self.bot.registry, upscaler)
        loaded = await load_attachment(interaction, image)
        params = await images.upscale_attachment(self.bot.registry, loaded, scale, upscaler)
        await submit(interaction, "upscale", params)

    @upscale.autocomplete("upscaler")
    async def upscaler_autocomplete(self, interaction: discord.Interaction, current: str
                                    ) -> list[app_commands.Choice[str]]:
        return model_choices(images.upscalers(self.bot.registry), current,
                             label=lambda spec: f"{spec.name} ({spec.kind})")

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await act_on_reaction(
            self.bot, payload, emoji=UPSCALE_EMOJI, verb="Upscaling",
            single_only="pick the image to upscale with U1-U{count} under job #{job.id}.",
            begin=lambda job_id, origin: self.bot.derived.upscale(job_id=job_id, index=0, scale=BUTTON_SCALE,
                                                                  origin=origin))


@handles("upscale")
async def upscale_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    await start(interaction, lambda origin: interaction.client.derived.upscale(
        job_id=job_id, index=index, scale=BUTTON_SCALE, origin=origin))


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Upscale(bot))
