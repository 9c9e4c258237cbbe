"""/help: short pages of prompt craft, paged with buttons that keep working after a restart."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands

from bot.ui.feature import Feature
from bot.ui.render import ACCENT

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)

# (title, body). Short on purpose: one idea a page, with an example to copy.
PAGES: tuple[tuple[str, str], ...] = (
    ("Write the picture you see",
     "Be detailed and specific: the model only knows what you write. Layer the prompt:\n"
     "1. **Setting**: where and when (*a rainy Tokyo side street at night*)\n"
     "2. **Subject**: who or what (*an old ramen cook*)\n"
     "3. **Details**: pose, clothes, light, colours (*steam rising, neon reflections on wet asphalt*)\n"
     "4. **Style**: medium and look (*35 mm photo, shallow depth of field*)\n\n"
     "`/imagine prompt: a rainy Tokyo side street at night, an old ramen cook behind the counter, "
     "steam rising, neon reflections, 35 mm photo`"),
    ("Negative prompts",
     "`negative` lists what to keep out. Use it for the usual distortions rather than for the subject:\n"
     "*extra fingers, deformed hands, fused fingers, distorted face, asymmetrical eyes, blurry, lowres, "
     "watermark, text*.\n"
     "Keep it short: every word pulls the image somewhere. Distilled models (Lightning, Turbo) ignore it."),
    ("Seed, steps and guidance",
     "**Seed**: the starting noise. Same prompt + same seed + same options = the same image; change one "
     "word and keep the seed to compare.\n"
     "**Steps**: how many times the image is refined. 20-30 is plenty for SD 1.5 and SDXL; more is "
     "slower, rarely better.\n"
     "**Guidance** (CFG): how strictly to follow the prompt. 5-8 is typical; too high burns colours and "
     "contrast, too low drifts off the prompt."),
    ("Weights, long prompts and LoRAs",
     "**Weights**: `(word:1.3)` makes a word count more, `(word)` is x1.1, `[word]` is /1.1; brackets nest "
     "and multiply, `\\(` is a plain bracket. Stay between 0.5 and 1.5: further out, images fall apart.\n"
     "**Long prompts**: past 77 tokens (about 60 words) the prompt is read in chunks instead of cut off, up "
     "to 600 tokens; the result says if anything was dropped. Put what matters most first anyway.\n"
     "**LoRA**: `/imagine lora:` adds a style or character from the server's collection (it autocompletes); "
     "`lora_weight` 0-2, default 1: lower it when the LoRA drowns the prompt. Up to three: `lora2`, `lora3`, "
     "or `<lora:name:0.8>` typed in the prompt. `BREAK` starts a new 77-token chunk."),
    ("Styles, samplers and wildcards",
     "**Style**: `/imagine style:watercolor` wraps your prompt in a tested recipe and adds its negative; "
     "servers add their own.\n"
     "**Sampler**: A1111's names (`DPM++ 2M Karras`, `Euler a`, ...); leave it empty for the model's own.\n"
     "**Variants**: `a {red|blue|green} fox` picks one by the seed: Rerun keeps it, Reroll may pick "
     "another. `__colors__` picks from the bot's wildcard lists, and an embedding's name "
     "(e.g. in the negative prompt) works where the owner added some."),
    ("Edit what you made",
     "Under a single image: **Vary (Subtle)** and **Vary (Strong)** redraw it a little or a lot; "
     "**Vary (Region)** lets you pick cells of a 3×3 grid and redraw only those, with a new prompt; "
     "**Zoom Out 2x** and **1.5x** widen the frame; the arrows ⬅️ ➡️ ⬆️ ⬇️ extend it one way; "
     "**Rerun** draws it again with the same seed. Under a grid, **U1-U4** upscale and **V1-V4** vary one image.\n"
     "**Remix**: `/settings remix:on` makes Reroll, Vary, Zoom and the arrows ask for the prompt first.\n"
     "`/edit image: mask: prompt:` redraws the white part of your own black-and-white mask.\n"
     "`/imagine hires:2x` draws, enlarges and refines the details; `tile:True` makes a seamless texture."),
    ("From your own images",
     "`/describe image:` suggests four prompts for a picture (Danbooru tags too for anime); the buttons "
     "**1**-**4** run `/imagine` with one.\n"
     "`/blend image1: image2:` mixes 2-5 images, `weights: 1, 0.5` sets how much of each, `prompt:` steers it.\n"
     "`/imagine style_ref:` keeps an image's look (colours, strokes) but not its subject; `style_weight` 0-2.\n"
     "`/train name: images: trigger:` makes your own LoRA from 5-30 images (where the server allows it); "
     "`/loras` lists, renames, shares and deletes yours.\n"
     "`/settings` keeps your defaults: model, aspect, style, negative, steps, **private results** "
     "(only you see them) and Remix."),
    ("Why Lightning and Turbo need so few steps",
     "SDXL-Lightning and SDXL-Turbo are *distilled*: a student model was trained to jump to what the "
     "original reaches in 30-50 steps. Lightning's 4-step checkpoint is made for 4 steps, Turbo for 1-4, "
     "both without guidance (CFG 0). Extra steps do not add detail; they were never trained for. Use "
     "them for quick drafts, then the full SDXL model for the final."),
    ("Anime: tag order matters",
     "`/anime` uses Animagine XL, trained on Danbooru tags in a fixed order:\n"
     "**count** (1girl, 2boys, no humans) → **character** (hatsune miku) → **series** (vocaloid) → "
     "**everything else** → **quality** (masterpiece, best quality, very aesthetic, absurdres).\n"
     "Write tags separated by commas in any order: the bot reorders them, adds the quality tags unless "
     "you wrote your own, and shows the prompt exactly as used. Characters can be written the Danbooru "
     "way: `frieren (sousou no frieren)`."),
    ("Copyright and artists' names",
     "Characters and brands belong to their owners: images of them are for personal fun, not for sale. "
     "Naming a living artist to copy their style takes their work without asking; describe the look "
     "instead (*thick ink lines, muted watercolour, art nouveau frames*). Prompts naming characters, "
     "brands or living artists are made with a notice under the image; some servers block them."),
)

TEMPLATE = r"atelier:help:(?P<page>[0-9]+)"


def page_embed(page: int) -> discord.Embed:
    title, body = PAGES[page]
    embed = discord.Embed(title=title, description=body, colour=ACCENT)
    embed.set_footer(text=f"Page {page + 1} of {len(PAGES)} · /help")
    return embed


def page_view(page: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(HelpPageButton(page - 1, "Previous", disabled=page == 0))
    view.add_item(HelpPageButton(page + 1, "Next", disabled=page == len(PAGES) - 1))
    return view


class HelpPageButton(discord.ui.DynamicItem[discord.ui.Button["discord.ui.View"]], template=TEMPLATE):
    """Shows page ``target``; the page number lives in the custom_id, so a restart loses nothing."""

    def __init__(self, target: int, label: str = "Go", *, disabled: bool = False) -> None:
        # Clamped: the disabled Previous of page 1 points at page 1 itself, which keeps the two ids
        # of a page distinct (p-1 and p+1, or p and p+1 at the ends).
        target_id = max(0, min(target, len(PAGES) - 1))
        super().__init__(discord.ui.Button(label=label, custom_id=f"atelier:help:{target_id}", disabled=disabled,
                                           style=discord.ButtonStyle.secondary))
        self.target = target_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> HelpPageButton:
        return cls(int(match["page"]))

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        await interaction.response.edit_message(embed=page_embed(self.target), view=page_view(self.target))


class Help(Feature):
    @app_commands.command(name="help", description="Prompt craft: how to get the image you have in mind")
    @app_commands.describe(page="Start at this page")
    async def help(self, interaction: discord.Interaction[Atelier], page: app_commands.Range[int, 1, len(PAGES)] = 1
                   ) -> None:
        index = page - 1
        await interaction.response.send_message(embed=page_embed(index), view=page_view(index), ephemeral=True)


async def setup(bot: Atelier) -> None:
    bot.add_dynamic_items(HelpPageButton)
    await bot.add_cog(Help(bot))
