"""/upscale, the U1-U4 buttons of a grid, and 🔍 on a result: Real-ESRGAN-class enlargement x2 or x4, or,
with ``upscaler:`` naming one, the Stable Diffusion x4 upscaler for small images."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.params import images as studio
from cogs.imagine import act_on_reaction, load_attachment, origin_of, show_ticket
from cogs.views import handles
from inference.limits import UPSCALE_FACTORS, UPSCALE_MAX_INPUT

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

UPSCALE_EMOJI = "🔍"
# Buttons and reactions upscale x2: a 1024 px SDXL image becomes 2048 px, which fits the upload
# limit once re-encoded; /upscale offers x4.
BUTTON_SCALE = 2


class Upscale(commands.Cog):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot

    @app_commands.command(name="upscale", description="Enlarge an image x2 or x4 (Real-ESRGAN, or SD x4 for small images)")
    @app_commands.describe(image="The image to enlarge (PNG, JPEG, WebP, GIF or BMP)",
                           scale=f"How much larger (x4 takes images up to {UPSCALE_MAX_INPUT[4] / 1e6:.0f} MP, "
                                 f"x2 up to {UPSCALE_MAX_INPUT[2] / 1e6:.0f} MP)",
                           upscaler="Which upscaler (default: Real-ESRGAN; SD x4 redraws small images, x4 only)")
    @app_commands.choices(scale=[app_commands.Choice(name=f"x{factor}", value=factor) for factor in UPSCALE_FACTORS])
    async def upscale(self, interaction: discord.Interaction[Atelier], image: discord.Attachment, scale: int = 4,
                      upscaler: str | None = None) -> None:
        service = self.bot.service
        studio.check_scale(scale)
        studio.upscaler_spec(service, upscaler)
        loaded = await load_attachment(interaction, image)
        params = await studio.upscale_attachment(service, loaded, scale, upscaler)
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        ticket = await service.submit(command="upscale", params=params, origin=origin_of(interaction))
        await show_ticket(self.bot, ticket)

    @upscale.autocomplete("upscaler")
    async def upscaler_autocomplete(self, interaction: discord.Interaction, current: str
                                    ) -> list[app_commands.Choice[str]]:
        current = current.lower().strip()
        return [app_commands.Choice(name=f"{spec.name} ({spec.kind})"[:100], value=spec.name)
                for spec in studio.upscalers(self.bot.service) if current in spec.name.lower()][:25]

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await act_on_reaction(
            self.bot, payload, emoji=UPSCALE_EMOJI, verb="Upscaling",
            single_only="pick the image to upscale with U1-U{count} under job #{job.id}.",
            start=lambda job, origin: studio.upscale_output(self.bot.service, job_id=job.id, index=0,  # type: ignore[arg-type]
                                                            scale=BUTTON_SCALE, origin=origin))


@handles("upscale")
async def upscale_button(interaction: discord.Interaction[Atelier], job_id: int, index: int = 0) -> None:
    await interaction.response.defer(thinking=True)
    ticket = await studio.upscale_output(interaction.client.service, job_id=job_id, index=index,
                                         scale=BUTTON_SCALE, origin=origin_of(interaction))
    await show_ticket(interaction.client, ticket)


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Upscale(bot))
