"""/blend: one image mixing 2-5 images, through the model family's IP-Adapter, each image at its own
weight (``weights: 1, 0.5``), with an optional prompt steering the mix.

Every image is fetched and checked like any attachment (bot/params/attachments.py); a refusal names
the option it concerns. The job is an ordinary text-to-image job with image prompts
(inference/ipadapter.py): queued, cancellable, in history, with restart-proof result buttons, and
its PNG records ``IP Adapter`` and ``IP Adapter weights``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.params import blend as blending
from bot.params.imagine import ImagineOptions
from bot.services.preferences import Preferences
from bot.ui import preferences as member_defaults
from bot.ui.feature import Feature, described, model_choices
from bot.ui.submit import load_named, submit
from inference.limits import IP_WEIGHT_RANGE
from inference.models import ASPECTS, SD_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)


class Blend(Feature):
    @app_commands.command(name="blend", description="Mix 2-5 images into one (IP-Adapter)")
    @app_commands.describe(
        **described("seed"),
        image1="First image to mix", image2="Second image to mix", image3="Third image (optional)",
        image4="Fourth image (optional)", image5="Fifth image (optional)",
        weights=f"How much of each image, in order, e.g. `1, 0.5` ({IP_WEIGHT_RANGE[0]:g}-{IP_WEIGHT_RANGE[1]:g}; "
                "default: equal)",
        model="Which SD 1.5 or SDXL model draws the mix (default: the server's default)",
        aspect="Shape of the image",
        prompt="Optional words to steer the mix (e.g. a watercolor of a city)",
    )
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS])
    async def blend(self, interaction: discord.Interaction[Atelier], image1: discord.Attachment,
                    image2: discord.Attachment, image3: discord.Attachment | None = None,
                    image4: discord.Attachment | None = None, image5: discord.Attachment | None = None,
                    weights: str | None = None, model: str | None = None, aspect: str | None = None,
                    seed: int | None = None, prompt: str | None = None) -> None:
        named = [(f"image{i}", a) for i, a in enumerate((image1, image2, image3, image4, image5), start=1)
                 if a is not None]
        mix = blending.parse_weights(weights, len(named))
        defaults = await member_defaults.defaults_of(interaction)  # /settings (then the server's): aspect, negative
        params = self.bot.service.prepare_imagine(ImagineOptions(
            prompt=(prompt or "").strip() or blending.DEFAULT_PROMPT, model=model, seed=seed,
            aspect=Preferences.aspect(aspect, defaults, ASPECTS), negative=Preferences.negative(None, defaults)))
        blending.check_model(self.bot.registry, self.bot.registry.get(params["model"]), what="/blend")
        loaded = [await load_named(interaction, option, attachment) for option, attachment in named]
        blending.check_distinct(loaded, [option for option, _ in named])
        await submit(interaction, "blend", await blending.blend_params(params, loaded, mix))

    @blend.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in SD_KINDS), current,
                             label=lambda spec: f"{spec.name} ({spec.kind})", match_kind=True)


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Blend(bot))
