"""/animate, the Animate button on single results and 🎬 on them: Stable Video Diffusion, MP4 out.

Videos take minutes on real hardware, longer than an interaction token lives; delivery already
falls back to the channel with the bot token when the token has expired (bot/ui/delivery.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.params import animate
from cogs.imagine import act_on_reaction, load_attachment, origin_of, show_ticket
from cogs.views import handles
from inference.limits import (
    DEFAULT_FPS,
    DEFAULT_MOTION,
    FPS_OPTION_RANGE,
    FPS_RANGE,
    MOTION_OPTION_RANGE,
    MOTION_RANGE,
)

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

ANIMATE_EMOJI = "🎬"


class Animate(commands.Cog):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot

    @app_commands.command(name="animate", description="Turn an image into a short video (Stable Video Diffusion)")
    @app_commands.describe(image="The still to bring to life (PNG, JPEG, WebP, GIF or BMP)",
                           frames="How many frames (14 for SVD, 25 for SVD-XT; fewer is faster)",
                           fps=f"Playback speed, {FPS_RANGE[0]}-{FPS_RANGE[1]} frames per second (default {DEFAULT_FPS})",
                           motion=f"How much moves, {MOTION_RANGE[0]} (almost still) - {MOTION_RANGE[1]} (a lot); default {DEFAULT_MOTION}",
                           seed="Reuse a seed to reproduce a video",
                           model="Which video model (default: the first installed)")
    async def animate(self, interaction: discord.Interaction[Atelier], image: discord.Attachment,
                      frames: int | None = None, fps: app_commands.Range[int, FPS_OPTION_RANGE[0], FPS_OPTION_RANGE[1]] | None = None,
                      motion: app_commands.Range[int, MOTION_OPTION_RANGE[0], MOTION_OPTION_RANGE[1]] | None = None, seed: int | None = None,
                      model: str | None = None) -> None:
        service = self.bot.service
        animate.check_options(animate.video_spec(service, model), frames, fps, motion)
        loaded = await load_attachment(interaction, image)
        params = await animate.animate_attachment(service, loaded, frames=frames, fps=fps, motion=motion, seed=seed,
                                                  model=model)
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        ticket = await service.submit(command="animate", params=params, origin=origin_of(interaction))
        await show_ticket(self.bot, ticket)

    @animate.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        current = current.lower().strip()
        return [app_commands.Choice(name=spec.name, value=spec.name)
                for spec in animate.video_models(self.bot.service) if current in spec.name.lower()][:25]

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await act_on_reaction(
            self.bot, payload, emoji=ANIMATE_EMOJI, verb="Animating",
            single_only=f"{ANIMATE_EMOJI} animates single images: upscale or vary one of job #{{job.id}} first, "
                        "then react on that result.",
            start=lambda job, origin: animate.animate_output(self.bot.service, job_id=job.id, index=0,  # type: ignore[arg-type]
                                                             origin=origin))


@handles("animate")
async def animate_button(interaction: discord.Interaction[Atelier], job_id: int, index: int = 0) -> None:
    await interaction.response.defer(thinking=True)
    ticket = await animate.animate_output(interaction.client.service, job_id=job_id, index=index,
                                          origin=origin_of(interaction))
    await show_ticket(interaction.client, ticket)


def _video_aware(check: Any) -> Any:
    """The image check, fed sampled frames for videos (it decodes stills only)."""

    async def checked(job: Any, files: list[bytes]) -> str | None:
        return await check(job, await asyncio.to_thread(animate.stills_for_moderation, files))

    return checked


async def setup(bot: Atelier) -> None:
    # TODO(owner of bot/client.py, bot/services/moderation.py): move this into the wiring; kept here so video
    # results are scored frame by frame rather than crashing the PNG decoder.
    if bot.service.image_check is not None:
        bot.service.image_check = _video_aware(bot.service.image_check)
    await bot.add_cog(Animate(bot))
