"""/train: a member's own LoRA from 5-30 images of a subject or a style, trained on the bot's GPUs.

Discord caps a command at 25 options, so the images come as ``images`` (one image, or a zip of up to
30) plus ``image2`` … ``image15``: five attachments are enough, a zip carries a larger set. The job
is queued like any other (fair order, credits, progress, cancel); its result is a sample image drawn
with the new LoRA, and the LoRA joins the member's space (/loras), usable at once in /imagine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import InvalidOption
from bot.params import attachments
from bot.params.training import MAX_ZIP_BYTES, training_set
from bot.services.training import TRAIN_COMMAND
from bot.ui.feature import Feature, model_choices
from bot.ui.preferences import is_private
from bot.ui.submit import submit
from bot.ui.tree import screen_text
from inference.limits import MAX_TRAIN_IMAGES, MIN_TRAIN_IMAGES, TRAIN_STEPS_RANGE
from inference.models import RequestRefused
from inference.training.job import FAMILY_OF_KIND
from inference.training.settings import KINDS, settings_for

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

EXTRA_IMAGES = 14  # image2 … image15


class Train(Feature):
    @app_commands.command(name="train", description="Train your own LoRA from 5-30 images of a subject or a style")
    @app_commands.describe(
        name="What to call your LoRA (shown in /loras and /imagine's lora option)",
        images=f"One image, or a zip of {MIN_TRAIN_IMAGES}-{MAX_TRAIN_IMAGES} images",
        trigger="A rare word (e.g. zxq_rosie) that calls the subject or style up in your prompts",
        kind="subject: one person, pet or object; style: a look across many subjects",
        base_model="The SD 1.5 or SDXL model to train on (default: the bot's default)",
        real_person="The subject is a real person (only where the server allows it)",
        consent="I have the consent of the person in the photos",
        steps=f"Training steps ({TRAIN_STEPS_RANGE[0]}-{TRAIN_STEPS_RANGE[1]}; default by kind and model)",
        **{f"image{i}": "Another image" for i in range(2, EXTRA_IMAGES + 2)},
    )
    @app_commands.choices(kind=[app_commands.Choice(name=kind, value=kind) for kind in KINDS])
    @app_commands.guild_only()
    async def train(self, interaction: discord.Interaction[Atelier], name: str, images: discord.Attachment,
                    trigger: str, kind: str = "subject", base_model: str | None = None, real_person: bool = False,
                    consent: bool = False, steps: int | None = None, image2: discord.Attachment | None = None,
                    image3: discord.Attachment | None = None, image4: discord.Attachment | None = None,
                    image5: discord.Attachment | None = None, image6: discord.Attachment | None = None,
                    image7: discord.Attachment | None = None, image8: discord.Attachment | None = None,
                    image9: discord.Attachment | None = None, image10: discord.Attachment | None = None,
                    image11: discord.Attachment | None = None, image12: discord.Attachment | None = None,
                    image13: discord.Attachment | None = None, image14: discord.Attachment | None = None,
                    image15: discord.Attachment | None = None) -> None:
        training = self.bot.training
        roles = [role.id for role in getattr(interaction.user, "roles", [])]
        await training.check_may_train(guild_id=interaction.guild_id, role_ids=roles, real_person=real_person,
                                       consent=consent)
        name = await training.check_name_free(user_id=interaction.user.id, name=name)
        # The trigger is the job's prompt (screened like any); the name is shown to others where the
        # LoRA is shared (/loras, /imagine lora:, result embeds), so it is screened too.
        await screen_text(interaction, name)
        spec = self.bot.registry.get(base_model) if base_model else self.bot.registry.default
        family = FAMILY_OF_KIND.get(spec.kind)
        if family is None:
            raise InvalidOption(f"{spec.name} ({spec.kind}) cannot be trained on; choose an SD 1.5 or SDXL model.")
        try:
            settings = settings_for(kind, family, trigger=trigger, base_model=spec.name, steps=steps)
        except RequestRefused as exc:
            raise InvalidOption(str(exc)) from None
        given = [a for a in (images, image2, image3, image4, image5, image6, image7, image8, image9, image10,
                             image11, image12, image13, image14, image15) if a is not None]
        # Downloads, checks and the NSFW pass take a while; private results (/settings) stay private from here.
        await interaction.response.defer(thinking=True, ephemeral=await is_private(interaction))
        files = []
        for attachment in given:
            self.bot.limits.take("attachment", interaction.user.id)
            limit = MAX_ZIP_BYTES if attachment.filename.lower().endswith(".zip") else None
            files.append((attachment.filename, await attachments.download(attachment, max_bytes=limit)))
        prepared = await asyncio.to_thread(training_set, files)
        await training.screen_images(prepared.pngs, guild_id=interaction.guild_id, moderation=self.bot.moderation)
        params = training.job_params(settings, model_kind=spec.kind, user_id=interaction.user.id, name=name,
                                     images=prepared.pngs, model_extra=spec.extra)
        log.info("member %s queues training of %r (%s, %d images) on %s", interaction.user.id, name, kind,
                 len(prepared.pngs), spec.name)
        await submit(interaction, TRAIN_COMMAND, params)

    @train.autocomplete("base_model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str
                                 ) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in FAMILY_OF_KIND and not s.single_file),
                             current, label=lambda spec: f"{spec.name} ({spec.kind})")


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Train(bot))
