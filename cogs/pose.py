"""/pose: text to image in a chosen pose with ControlNet OpenPose (bot/params/pose.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.params import pose as pose_jobs
from cogs.imagine import load_attachment, origin_of, show_ticket
from inference.limits import MAX_CONTROL_SCALE, MIN_CONTROL_SCALE
from inference.models import ASPECTS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)


class Pose(commands.Cog):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot

    @app_commands.command(name="pose", description="Create an image of a person in a chosen pose (ControlNet OpenPose)")
    @app_commands.describe(
        prompt="Who, wearing what, where, in which style",
        pose="A preset pose (default: standing)",
        reference="Instead of a preset: an OpenPose skeleton image, or a photo when pose detection is enabled",
        model="Which pose model (default: the first installed)",
        aspect="Shape of the image (default: square, or the reference's shape)",
        seed="Reuse a seed to reproduce an image",
        strength=f"How strictly to follow the pose, {MIN_CONTROL_SCALE:g}-{MAX_CONTROL_SCALE:g} "
                 f"(default {pose_jobs.DEFAULT_STRENGTH:g})",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS])
    async def pose(self, interaction: discord.Interaction[Atelier], prompt: str, pose: str | None = None,
                   reference: discord.Attachment | None = None, model: str | None = None, aspect: str | None = None,
                   seed: int | None = None, strength: float | None = None) -> None:
        service = self.bot.service
        # Cheap checks first, so bad options are answered privately before any download or defer.
        pose_jobs.pose_spec(service, model)
        pose_jobs.check_strength(strength)
        if reference is None:
            pose_jobs.preset_name(pose)
        loaded = await load_attachment(interaction, reference) if reference is not None else None
        params = await pose_jobs.prepare(service, prompt=prompt, pose=pose, reference=loaded, model=model,
                                         aspect=aspect, seed=seed, strength=strength)
        origin = origin_of(interaction)
        await service.precheck(params, origin)
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        ticket = await service.submit(command="pose", params=params, origin=origin)
        await show_ticket(self.bot, ticket)

    @pose.autocomplete("pose")
    async def pose_autocomplete(self, interaction: discord.Interaction, current: str
                                ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in pose_jobs.matching_presets(current)][:25]

    @pose.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        current = current.lower().strip()
        return [app_commands.Choice(name=f"{spec.name} ({spec.base})"[:100], value=spec.name)
                for spec in pose_jobs.pose_models(self.bot.service) if current in spec.name.lower()][:25]


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Pose(bot))
