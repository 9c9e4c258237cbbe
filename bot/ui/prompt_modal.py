"""The prompt modal: Vary (Region) and Remix ask for the prompt to draw with before the job starts.

A modal's text is typed after the command tree's global check has run (a button or a select opened
it), so the modal moderates the prompt itself, exactly as the tree does for a command's prompt: the
rule layers before the acknowledgement (a refusal is an ephemeral reply with the reason and the
case), their verdict handed to the submission, whose screen hook finishes the judgement.

Remix: when a member's ``remix`` preference is on, the result buttons in REMIX_ACTIONS open this
modal first; each action's prompt-taking handler registers itself with @remixes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord

from bot.errors import InvalidOption, UnknownJob
from bot.services.imagine_checks import MAX_PROMPT
from bot.ui.tree import PROMPT_VERDICT, is_nsfw, report_error
from inference.limits import MAX_STYLE_TEMPLATE

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

# Discord's cap on a text input's length is 4000. A job's stored prompt may be a member's prompt
# wrapped in a style's template (bot/services/imagine_checks.py): the modal holds all of it, uncut.
_INPUT_MAX = min(MAX_PROMPT + MAX_STYLE_TEMPLATE, 4000)

# (interaction, job id, image index, prompt) -> the job started with that prompt.
PromptHandler = Callable[["discord.Interaction[Atelier]", int, int, str], Awaitable[None]]
# The buttons Remix applies to: rerolls, variations and the canvas edits of Zoom Out and Pan.
REMIX_ACTIONS = ("reroll", "vary", "subtle", "zoom2", "zoom15", "left", "right", "up", "down")
REMIXERS: dict[str, PromptHandler] = {}


def remixes(action: str) -> Callable[[PromptHandler], PromptHandler]:
    if action not in REMIX_ACTIONS:
        raise ValueError(f"Remix does not apply to {action!r}; it applies to {', '.join(REMIX_ACTIONS)}")

    def register(func: PromptHandler) -> PromptHandler:
        REMIXERS[action] = func
        return func

    return register


def checked_prompt(text: str) -> str:
    prompt = (text or "").strip()
    if not prompt:
        raise InvalidOption("The prompt is empty: describe what you want to see.")
    if len(prompt) > _INPUT_MAX:
        raise InvalidOption(f"The prompt is {len(prompt)} characters; the limit is {_INPUT_MAX}.")
    return prompt


class PromptModal(discord.ui.Modal):
    """One text box, prefilled with the prompt; on submit, moderation, then ``begin(prompt)``."""

    def __init__(self, *, title: str, prompt: str, negative: str, begin: PromptHandler, job_id: int,
                 index: int) -> None:
        super().__init__(title=title[:45], timeout=600)
        self.prompt = discord.ui.TextInput(label="Prompt", style=discord.TextStyle.paragraph,
                                           default=prompt[:_INPUT_MAX], max_length=_INPUT_MAX, required=True)
        self.add_item(self.prompt)
        self.negative = negative
        self.begin = begin
        self.job_id, self.index = job_id, index

    async def on_submit(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        prompt = checked_prompt(self.prompt.value)
        bot = interaction.client
        await bot.moderation.ensure_not_banned(interaction.guild_id, interaction.user.id)
        interaction.extras[PROMPT_VERDICT] = await bot.moderation.precheck(
            prompt, self.negative, user_id=interaction.user.id, guild_id=interaction.guild_id,
            channel_id=interaction.channel_id, nsfw_channel=is_nsfw(interaction.channel))
        await self.begin(interaction, self.job_id, self.index, prompt)

    async def on_error(self, interaction: discord.Interaction, error: Exception) -> None:  # type: ignore[override]
        await report_error(interaction, error)


async def open_prompt_modal(interaction: discord.Interaction[Atelier], *, title: str, job_id: int, index: int,
                            begin: PromptHandler) -> None:
    """Show the modal with the prompt a new job from job ``job_id`` would draw with (an upscale's:
    that of the job it enlarged)."""
    bot = interaction.client
    job = await bot.service.get_job(job_id)
    if job is None:
        raise UnknownJob(f"Job #{job_id} no longer exists (it may have been deleted).")
    params = job.params
    if job.command == "upscale":
        params, _, _ = await bot.derived.canvas_source(job_id, index)
    modal = PromptModal(title=title, prompt=str(params.get("prompt", "")),
                        negative=str(params.get("negative_prompt", "")), begin=begin, job_id=job_id, index=index)
    await interaction.response.send_modal(modal)
