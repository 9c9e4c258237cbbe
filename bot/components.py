"""Button rows attached to messages. Only ids travel in custom_id (100 chars max); state is in the database.

The DynamicItem classes in cogs/views.py match these templates, so buttons keep working after a
restart: discord.py routes a click by regex on custom_id, not by an in-memory view.
"""

from __future__ import annotations

import discord

from db.models import Job

PREFIX = "atelier"
TEMPLATE = PREFIX + r":(?P<action>{actions}):(?P<job_id>[0-9]+)"


def custom_id(action: str, job_id: int) -> str:
    return f"{PREFIX}:{action}:{job_id}"


def _button(label: str, action: str, job_id: int, *, emoji: str | None = None,
            style: discord.ButtonStyle = discord.ButtonStyle.secondary) -> discord.ui.Button[discord.ui.View]:
    return discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=custom_id(action, job_id))


def queued_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(_button("Cancel", "cancel", job.id or 0, style=discord.ButtonStyle.danger))
    return view


def result_view(job: Job) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(_button("Reroll", "reroll", job.id or 0, emoji="🔄", style=discord.ButtonStyle.primary))
    return view
