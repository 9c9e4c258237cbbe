"""/pose: text to image in a chosen pose with ControlNet OpenPose (bot/params/pose.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.params import pose as pose_jobs
from bot.services.preferences import Preferences
from bot.ui import preferences as member_defaults
from bot.ui.feature import Feature, described, model_choices
from bot.ui.submit import load_attachment, submit
from inference.limits import MAX_CONTROL_SCALE, MIN_CONTROL_SCALE
from inference.models import ASPECTS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)


class Pose(Feature):
    @app_commands.command(name="pose", description="Create an image of a person in a chosen pose (ControlNet OpenPose)")
    @app_commands.describe(
        **described("seed"),
        prompt="Who, wearing what, where, in which style",
        pose="A preset pose (default: standing)",
        reference="Instead of a preset: an OpenPose skeleton image, or a photo when pose detection is enabled",
        model="Which pose model (default: the first installed)",
        aspect="Shape of the image (default: square, or the reference's shape)",
        strength=f"How strictly to follow the pose, {MIN_CONTROL_SCALE:g}-{MAX_CONTROL_SCALE:g} "
                 f"(default {pose_jobs.DEFAULT_STRENGTH:g})",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS])
    async def pose(self, interaction: discord.Interaction[Atelier], prompt: str, pose: str | None = None,
                   reference: discord.Attachment | None = None, model: str | None = None, aspect: str | None = None,
                   seed: int | None = None, strength: float | None = None) -> None:
        # Cheap checks first, so bad options are answered privately before any download or defer.
        pose_jobs.pose_spec(self.bot.registry, model)
        pose_jobs.check_strength(strength)
        if reference is None:
            pose_jobs.preset_name(pose)
        loaded = await load_attachment(interaction, reference) if reference is not None else None
        # /settings: the default aspect unless a reference gives the shape; the default negative prompt.
        defaults = await member_defaults.defaults_of(interaction)
        aspect = aspect if reference is not None else Preferences.aspect(aspect, defaults, ASPECTS)
        params = await pose_jobs.prepare(self.bot.service, prompt=prompt, pose=pose, reference=loaded, model=model,
                                         aspect=aspect, seed=seed, strength=strength)
        params["negative_prompt"] = params["negative_prompt"] or (defaults.negative or "")
        await submit(interaction, "pose", params)

    @pose.autocomplete("pose")
    async def pose_autocomplete(self, interaction: discord.Interaction, current: str
                                ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in pose_jobs.matching_presets(current)][:25]

    @pose.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        return model_choices(pose_jobs.pose_models(self.bot.registry), current,
                             label=lambda spec: f"{spec.name} ({spec.base})")

async def setup(bot: Atelier) -> None:
    await bot.add_cog(Pose(bot))
