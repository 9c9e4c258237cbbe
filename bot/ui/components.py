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


def _canvas_buttons(view: discord.ui.View, job_id: int, *, row: int, region: bool = True) -> None:
    """Zoom Out 2x, Zoom Out 1.5x (and Vary (Region)) on ``row``, the four pan arrows on the next."""
    if region:
        view.add_item(_button("Vary (Region)", "region", job_id, row=row))
    view.add_item(_button("Zoom Out 2x", "zoom2", job_id, row=row))
    view.add_item(_button("Zoom Out 1.5x", "zoom15", job_id, row=row))
    for action, arrow in (("left", "⬅️"), ("right", "➡️"), ("up", "⬆️"), ("down", "⬇️")):
        view.add_item(_button(arrow, action, job_id, row=row + 1))


def result_view(job: Job, prompts: int = 0) -> discord.ui.View:
    """Midjourney's layout: a grid gets U1-U4 (upscale that image) and Reroll, then V1-V4 (vary it);
    a single image gets Reroll, Upscale, Vary (Subtle) and Vary (Strong), then Animate, Vary (Region),
    Zoom Out 2x and 1.5x, then the pan arrows; both get Rerun (same seed). A canvas edit's result
    (/edit, zoom, pan, region) gets Reroll, Upscale, Vary (Region), Rerun, then Zoom Out and the arrows
    again. Upscales of a generated image get Vary (Region), Zoom Out and the arrows; upscales of a
    member's own image are final: no buttons. Videos get Reroll only; a /describe result gets one
    button per prompt (``prompts``)."""
    view = discord.ui.View(timeout=None)
    job_id = job.id or 0
    if job.params.get("task") == "train":  # a training job's image is its LoRA's sample
        return layout(view)
    if job.params.get("task") == "upscale":
        if "job_id" in (job.params.get("source") or {}):
            _canvas_buttons(view, job_id, row=0)
        return layout(view)
    if job.params.get("task") == "inpaint":
        view.add_item(_button("Reroll", "reroll", job_id, emoji="🔄", style=discord.ButtonStyle.primary, row=0))
        view.add_item(_button("Upscale", "upscale", job_id, emoji="🔍", row=0))
        view.add_item(_button("Vary (Region)", "region", job_id, row=0))
        view.add_item(discord.ui.Button(label="Rerun", style=discord.ButtonStyle.secondary,
                                        custom_id=f"{PREFIX}:acct:rerun:{job_id}", row=0))
        _canvas_buttons(view, job_id, row=1, region=False)
        return layout(view)
    if job.command == "describe":  # prompt n -> /imagine with it (cogs/describe.py)
        for i in range(prompts):
            view.add_item(_button(str(i + 1), "prompt", job_id, index=i, emoji="🖌️", row=0))
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
        _canvas_buttons(view, job_id, row=1)
    # Handled by cogs/account.py: the same job again with the same seed.
    view.add_item(discord.ui.Button(label="Rerun", style=discord.ButtonStyle.secondary,
                                    custom_id=f"{PREFIX}:acct:rerun:{job_id}", row=1 if count > 1 else 0))
    return layout(view)
