"""Canvas edits: Zoom Out 2x / 1.5x, the pan arrows, Vary (Region) and /edit, plus Remix's prompt
modal for rerolls, variations, zooms and pans.

Every edit is an inpainting job built from a result by bot/services/derived.py (or from a member's
image and mask by /edit) and submitted like any other job: moderation, quotas, the queue, progress,
cancel, history, /show and the result buttons.

Vary (Region) is three steps, each restart-safe but the last: the button answers privately with a
preview of the image under a numbered 3x3 grid and a select menu of the cells (several allowed);
picking cells outlines them on the preview and offers "Redraw"; that opens a modal with the prompt
to edit, and its submission starts the job. The cells travel in the custom_ids, the job in the
database. The member's cooldown counts at the first button only: the menu's steps make no work.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.params import canvas, images
from bot.params.imagine import ImagineOptions
from bot.services.derived import check_inpaints
from bot.ui.buttons import guard_job_button, handles
from bot.ui.components import PREFIX, layout
from bot.ui.feature import Feature, described, model_choices
from bot.ui.prompt_modal import open_prompt_modal, remixes
from bot.ui.submit import load_attachment, start, submit
from bot.ui.tree import report_error
from inference.limits import MAX_STRENGTH, MIN_STRENGTH
from inference.models import SD_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

PREVIEW_NAME = "region.png"


def _canvas_handler(op: str) -> None:
    @handles(op)
    async def button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
        await start(interaction, lambda origin: interaction.client.derived.canvas(
            job_id=job_id, index=index, op=op, origin=origin))

    @remixes(op)
    async def remixed(interaction: discord.Interaction[Atelier], job_id: int, index: int, prompt: str) -> None:
        await start(interaction, lambda origin: interaction.client.derived.canvas(
            job_id=job_id, index=index, op=op, origin=origin, prompt=prompt))


for _op in canvas.OPS:
    _canvas_handler(_op)


@remixes("reroll")
async def remix_reroll(interaction: discord.Interaction[Atelier], job_id: int, index: int, prompt: str) -> None:
    await start(interaction, lambda origin: interaction.client.derived.remix_reroll(
        job_id=job_id, prompt=prompt, origin=origin))


def _remix_variation(action: str, strength: float) -> None:
    @remixes(action)
    async def remixed(interaction: discord.Interaction[Atelier], job_id: int, index: int, prompt: str) -> None:
        await start(interaction, lambda origin: interaction.client.derived.variation(
            job_id=job_id, index=index, strength=strength, origin=origin, prompt=prompt))


_remix_variation("vary", images.STRONG)
_remix_variation("subtle", images.SUBTLE)


# ----- Vary (Region) -----

def _cells_id(job_id: int, index: int) -> str:
    return f"{PREFIX}:cells:{job_id}:{index}"


def _redraw_id(job_id: int, index: int, cells: list[int]) -> str:
    return f"{PREFIX}:redraw:{job_id}:{index}:{''.join(str(c + 1) for c in sorted(cells))}"


class RegionSelect(discord.ui.DynamicItem[discord.ui.Select["discord.ui.View"]],
                   template=PREFIX + r":cells:(?P<job_id>[0-9]+):(?P<index>[0-9])"):
    def __init__(self, job_id: int, index: int, chosen: list[int] | None = None) -> None:
        options = [discord.SelectOption(label=f"{cell + 1}: {name}", value=str(cell), default=cell in (chosen or []))
                   for cell, name in enumerate(canvas.CELL_NAMES)]
        super().__init__(discord.ui.Select(custom_id=_cells_id(job_id, index), placeholder="Cells to redraw",
                                           min_values=1, max_values=len(options) - 1, options=options))
        self.job_id, self.index = job_id, index

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> RegionSelect:
        return cls(int(match["job_id"]), int(match["index"]))

    async def callback(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        try:
            await guard_job_button(interaction, "region", self.job_id, cooldown=False)
            cells = canvas.check_cells([int(v) for v in self.item.values])
            await interaction.response.edit_message(**await region_message(interaction, self.job_id, self.index, cells))
        except Exception as exc:  # DynamicItem errors bypass the tree: report them the same way
            await report_error(interaction, exc)


class RedrawButton(discord.ui.DynamicItem[discord.ui.Button["discord.ui.View"]],
                   template=PREFIX + r":redraw:(?P<job_id>[0-9]+):(?P<index>[0-9]):(?P<cells>[1-9]{1,8})"):
    def __init__(self, job_id: int, index: int, cells: list[int]) -> None:
        super().__init__(discord.ui.Button(label="Redraw these cells", style=discord.ButtonStyle.primary,
                                           custom_id=_redraw_id(job_id, index, cells)))
        self.job_id, self.index, self.cells = job_id, index, cells

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> RedrawButton:
        return cls(int(match["job_id"]), int(match["index"]), [int(c) - 1 for c in match["cells"]])

    async def callback(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        cells = self.cells

        async def begin(inter: discord.Interaction[Atelier], job_id: int, index: int, prompt: str) -> None:
            await start(inter, lambda origin: inter.client.derived.region(
                job_id=job_id, index=index, cells=cells, prompt=prompt, origin=origin))

        try:
            await guard_job_button(interaction, "region", self.job_id, cooldown=False)
            canvas.check_cells(cells)
            await open_prompt_modal(interaction, title="Vary (Region): the prompt", job_id=self.job_id,
                                    index=self.index, begin=begin)
        except Exception as exc:
            await report_error(interaction, exc)


async def region_message(interaction: discord.Interaction[Atelier], job_id: int, index: int,
                         cells: list[int]) -> dict[str, Any]:
    """The private Vary (Region) message: the preview (``cells`` outlined), the menu, and Redraw once
    cells are chosen."""
    png = await interaction.client.derived.region_preview(job_id=job_id, index=index, cells=cells)
    view = discord.ui.View(timeout=None)
    view.add_item(RegionSelect(job_id, index, cells))
    text = "Pick the cells of the grid to redraw (several allowed)."
    if cells:
        view.add_item(RedrawButton(job_id, index, cells))
        text = f"Redraw cells {canvas.describe_cells(cells)}: press Redraw to edit the prompt and start."
    return {"content": text, "attachments": [discord.File(io.BytesIO(png), filename=PREVIEW_NAME)],
            "view": layout(view)}


@handles("region")
async def region_button(interaction: discord.Interaction[Atelier], job_id: int, index: int) -> None:
    message = await region_message(interaction, job_id, index, [])
    message["files"] = message.pop("attachments")
    await interaction.response.send_message(ephemeral=True, **message)


# ----- /edit -----

class Edit(Feature):
    @app_commands.command(name="edit", description="Redraw the white part of a mask on your own image")
    @app_commands.describe(
        **described("seed"),
        image="The image to edit (PNG, JPEG, WebP, GIF or BMP)",
        mask="Black and white, the image's shape: white is redrawn, black is kept",
        prompt="What to draw in the white part",
        negative="What to keep out of it",
        model="Which model draws it (default: the server's default)",
        strength=f"How much of the white part is redrawn ({MIN_STRENGTH:g} keeps it, {MAX_STRENGTH:g} ignores it; default "
                 f"{canvas.REGION_STRENGTH:g})",
    )
    async def edit(self, interaction: discord.Interaction[Atelier], image: discord.Attachment,
                   mask: discord.Attachment, prompt: str, negative: str | None = None, model: str | None = None,
                   seed: int | None = None, strength: app_commands.Range[float, MIN_STRENGTH, MAX_STRENGTH] | None = None) -> None:
        base = self.bot.service.prepare_imagine(ImagineOptions(prompt=prompt, negative=negative, model=model,
                                                               seed=seed))
        spec = self.bot.registry.get(base["model"])
        check_inpaints(spec)  # before the downloads: a model that can't inpaint would fail on the GPU
        picture = await load_attachment(interaction, image)
        drawn = await load_attachment(interaction, mask)
        binary = await asyncio.to_thread(canvas.check_mask, picture.image, drawn.image)
        edit = canvas.Canvas(picture.image, binary, {"op": "mask"})
        params = await asyncio.to_thread(
            canvas.inpaint_params, base, edit, spec=spec,
            strength=canvas.REGION_STRENGTH if strength is None else float(strength),
            source={"attachment": picture.filename[:100]}, seed=base["seed"])
        await submit(interaction, "edit", params)

    @edit.autocomplete("model")
    async def model_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in SD_KINDS), current,
                             label=lambda spec: f"{spec.name} ({spec.kind})", match_kind=True)


async def setup(bot: Atelier) -> None:
    bot.add_dynamic_items(RegionSelect, RedrawButton)
    await bot.add_cog(Edit(bot))

