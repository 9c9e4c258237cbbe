"""Button rows attached to messages. Only ids travel in custom_id (100 chars max); state is in the database.

The DynamicItem classes (bot/ui/buttons.py; the account and review buttons in their cogs) match
these templates, so buttons keep working after a restart: discord.py routes a click by regex on
custom_id, not by an in-memory view.
"""

from __future__ import annotations

import discord

from bot.params.images import VARIABLE_COMMANDS
from db.models import Job

PREFIX = "atelier"
# The optional index names one image of a multi-image job (U2 and V2 carry 1); ids without one,
# such as every button posted before it existed, mean image 0.
TEMPLATE = PREFIX + r":(?P<action>{actions}):(?P<job_id>[0-9]+)(?::(?P<index>[0-9]))?"


def custom_id(action: str, job_id: int, index: int | None = None) -> str:
    return f"{PREFIX}:{action}:{job_id}" + (f":{index}" if index is not None else "")


def _button(label: str, action: str, job_id: int, *, emoji: str | None = None, index: int | None = None,
            style: discord.ButtonStyle = discord.ButtonStyle.secondary, row: int | None = None,
            ) -> discord.ui.Button[discord.ui.View]:
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id(action, job_id, index),
                             row=row)


def layout(view: discord.ui.View) -> discord.ui.View:
    """``view`` as a layout only: stopped before it is sent, so discord.py does not keep it.

    discord.py stores every view it sends that is still listening and has a plain button with a
    custom_id, one per message, and with ``timeout=None`` never drops it: a bot posting a result a
    minute would hold every result's buttons for as long as it runs. Clicks on these buttons are
    routed by the DynamicItem templates (bot/ui/buttons.py), which never needed the stored view.
    """
    view.stop()
    return view


def queued_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(_button("Cancel", "cancel", job.id or 0, style=discord.ButtonStyle.danger))
    return layout(view)


def result_view(job: Job) -> discord.ui.View:
    """Midjourney's layout: a grid gets U1-U4 (upscale that image) and Reroll, then V1-V4 (vary it);
    a single image gets Reroll, Upscale, Vary (Subtle) and Vary (Strong), then Animate; both get Rerun
    (same seed). Upscale results are final: no buttons; videos get Reroll only."""
    view = discord.ui.View(timeout=None)
    job_id = job.id or 0
    if job.params.get("task") in ("upscale", "train"):  # a training job's image is its LoRA's sample
        return layout(view)
    if job.params.get("task") == "img2vid":
        view.add_item(_button("Reroll", "reroll", job_id, emoji="🔄", style=discord.ButtonStyle.primary))
        return layout(view)
    count = int(job.params.get("count", 1)) if job.command in VARIABLE_COMMANDS else 1
    if count > 1:
        for i in range(count):
            view.add_item(_button(f"U{i + 1}", "upscale", job_id, index=i, row=0))
    view.add_item(_button("Reroll", "reroll", job_id, emoji="🔄", style=discord.ButtonStyle.primary, row=0))
    if count > 1:
        for i in range(count):
            view.add_item(_button(f"V{i + 1}", "vary", job_id, index=i, row=1))
    else:
        view.add_item(_button("Upscale", "upscale", job_id, emoji="🔍", row=0))
        view.add_item(_button("Vary (Subtle)", "subtle", job_id, row=0))
        view.add_item(_button("Vary (Strong)", "vary", job_id, row=0))
        view.add_item(_button("Animate", "animate", job_id, emoji="🎬", row=1))
    # Handled by cogs/account.py: the same job again with the same seed.
    view.add_item(discord.ui.Button(label="Rerun", style=discord.ButtonStyle.secondary,
                                    custom_id=f"{PREFIX}:acct:rerun:{job_id}", row=1 if count > 1 else 0))
    return layout(view)
