"""/describe: four prompts that would draw an image (a captioning model, plus Danbooru tags for
anime pictures), each with a button that runs /imagine with it for whoever presses it.

The image is fetched and checked like every attachment (bot/params/attachments.py); the job runs
on the GPU pool like any other (queue, progress, cancel, history) and its result, the image with
its prompts, goes through the image check of every result. The buttons are restart-proof
(``atelier:prompt:<job>:<n>``): the prompts are read back from the job's stored file, checked by
moderation as a typed prompt is, and the /imagine job is the presser's.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.params import describe
from bot.params.imagine import ImagineOptions
from bot.services.described import DescribedPrompts
from bot.ui.buttons import handles
from bot.ui.feature import Feature
from bot.ui.preferences import imagine_options
from bot.ui.submit import load_attachment, origin_of, start, submit

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)


class Describe(Feature):
    @app_commands.command(name="describe", description="Four prompts that would draw this image")
    @app_commands.describe(image="The image to describe (PNG, JPEG, WebP, GIF or BMP)",
                           anime="Add Danbooru tags: auto (when the picture looks like anime), on, or off")
    @app_commands.choices(anime=[app_commands.Choice(name=mode, value=mode) for mode in describe.ANIME_MODES])
    async def describe(self, interaction: discord.Interaction[Atelier], image: discord.Attachment,
                       anime: str | None = None) -> None:
        mode = describe.check_anime(anime)
        describe.captioner(self.bot.registry)  # refused before the download when /describe is not set up
        loaded = await load_attachment(interaction, image)
        params = await describe.describe_params(self.bot.registry, loaded, mode)
        await submit(interaction, "describe", params)


@handles("prompt")
async def prompt_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    """Prompt n of a /describe result -> /imagine with it and the presser's defaults (/settings, then
    /admin defaults), as a typed /imagine with only that prompt would draw it."""
    bot = interaction.client
    prompt = await DescribedPrompts(bot.service).prompt(job_id=job_id, index=index)
    options = await imagine_options(interaction, ImagineOptions(prompt=prompt, lora_dir=bot.settings.lora_dir))
    params = bot.service.prepare_imagine(options)
    origin = origin_of(interaction)
    # The same check a typed /imagine prompt gets before it is acknowledged (the tree's).
    origin.prompt_verdict = await bot.moderation.precheck(
        params["prompt"], params.get("negative_prompt", ""), user_id=interaction.user.id,
        guild_id=interaction.guild_id, channel_id=interaction.channel_id, nsfw_channel=origin.nsfw_channel)
    await bot.service.precheck(params, origin)
    await start(interaction, lambda origin: bot.service.submit(command="imagine", params=params, origin=origin,
                                                               parent_job_id=job_id), origin)


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Describe(bot))
