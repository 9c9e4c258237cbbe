"""Result buttons that survive restarts: one DynamicItem matched by custom_id, with the job id inside it.

The button only routes: each action's handler lives with its feature (cogs/imagine.py registers
reroll, vary, subtle and cancel; cogs/upscale.py, cogs/animate.py and cogs/edit.py theirs) through @handles.
bot/client.py registers the item once, before the cogs load.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import discord

from bot.services.access import check_cancel, check_use
from bot.ui.components import TEMPLATE, custom_id
from bot.ui.prompt_modal import REMIXERS, open_prompt_modal
from bot.ui.tree import place_of, report_error

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

Handler = Callable[["discord.Interaction[Atelier]", int, int], Awaitable[None]]

# Every action a result button can carry; a handler registers itself for each with @handles.
ACTIONS = ("reroll", "cancel", "vary", "subtle", "upscale", "animate", "zoom2", "zoom15", "left", "right", "up",
           "down", "region", "prompt")

# What the remix modal's title calls each action.
REMIX_TITLES = {"reroll": "Reroll", "vary": "Vary (Strong)", "subtle": "Vary (Subtle)", "zoom2": "Zoom Out 2x",
                "zoom15": "Zoom Out 1.5x", "left": "Pan left", "right": "Pan right", "up": "Pan up",
                "down": "Pan down"}

# action -> handler(interaction, job_id, index), filled in by the cogs that own each action.
HANDLERS: dict[str, Handler] = {}


def handles(action: str) -> Callable[[Handler], Handler]:
    def register(func: Handler) -> Handler:
        HANDLERS[action] = func
        return func

    return register


async def guard_job_button(interaction: discord.Interaction[Atelier], action: str, job_id: int, *,
                           cooldown: bool = True) -> None:
    """Every result button checks who presses it, where, before its handler runs: a button is only
    an id in a custom_id, and an old or copied one may name a job of another member or server. The
    member's cooldown counts for every button that makes the bot work (not Cancel, and not the later
    steps of a menu whose first button counted: ``cooldown=False``)."""
    bot = interaction.client
    if action != "cancel" and cooldown:
        bot.limits.cooldown(interaction.user.id)
    job = await bot.service.get_job(job_id)
    if job is None:
        return  # the handler says so
    if action == "cancel":
        check_cancel(job, place_of(interaction))
    else:
        check_use(job, place_of(interaction))


class JobButton(discord.ui.DynamicItem[discord.ui.Button["discord.ui.View"]],
                template=TEMPLATE.format(actions="|".join(ACTIONS))):
    def __init__(self, action: str, job_id: int, index: int | None = None) -> None:
        super().__init__(discord.ui.Button(custom_id=custom_id(action, job_id, index), label=action.title()))
        self.action = action
        self.job_id = job_id
        self.index = index or 0

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> JobButton:
        index = match["index"]
        return cls(match["action"], int(match["job_id"]), int(index) if index is not None else None)

    async def callback(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        handler = HANDLERS.get(self.action)
        if handler is None:
            log.warning("no handler for button %s", self.action)
            return
        try:
            await guard_job_button(interaction, self.action, self.job_id)
            remixer = REMIXERS.get(self.action)
            if remixer is not None and await interaction.client.preferences.remix(interaction.user.id, interaction.guild_id):
                await open_prompt_modal(interaction, title=f"Remix: {REMIX_TITLES.get(self.action, self.action)}",
                                        job_id=self.job_id, index=self.index, begin=remixer)
                return
            await handler(interaction, self.job_id, self.index)
        except Exception as exc:  # DynamicItem errors bypass the tree: report them the same way
            await report_error(interaction, exc)
