"""/animate, the Animate button on single results and 🎬 on them: Stable Video Diffusion, MP4 out.

Videos take minutes on real hardware, longer than an interaction token lives; delivery already
falls back to the channel with the bot token when the token has expired (bot/ui/delivery.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.params import animate
from bot.ui.buttons import handles
from bot.ui.feature import Feature, model_choices
from bot.ui.submit import act_on_reaction, load_attachment, start, submit
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


class Animate(Feature):
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
        animate.check_options(animate.video_spec(self.bot.registry, model), frames, fps, motion)
        loaded = await load_attachment(interaction, image)
        params = await animate.animate_attachment(self.bot.registry, loaded, frames=frames, fps=fps, motion=motion,
                                                  seed=seed, model=model)
        await submit(interaction, "animate", params)

    @animate.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        return model_choices(animate.video_models(self.bot.registry), current)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await act_on_reaction(
            self.bot, payload, emoji=ANIMATE_EMOJI, verb="Animating",
            single_only=f"{ANIMATE_EMOJI} animates single images: upscale or vary one of job #{{job.id}} first, "
                        "then react on that result.",
            begin=lambda job_id, origin: self.bot.derived.animate(job_id=job_id, index=0, origin=origin))


@handles("animate")
async def animate_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    await start(interaction, lambda origin: interaction.client.derived.animate(job_id=job_id, index=index,
                                                                                origin=origin))


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Animate(bot))
