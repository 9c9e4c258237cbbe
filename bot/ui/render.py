"""Jobs as Discord embeds and files. Pure functions: no I/O, no state."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot.params.blend import describe_reference
from bot.params.images import describe_source
from bot.services.imagine_checks import hires_size
from db.models import Job, Output
from inference.hub_progress import loading_text
from inference.limits import SEED_LIMIT

ACCENT = discord.Colour(0x7C5CFF)
FAILED = discord.Colour(0xE5534B)
BAR_SLOTS = 10


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def progress_bar(step: int, total: int) -> str:
    filled = round(BAR_SLOTS * step / total) if total else 0
    return "▰" * filled + "▱" * (BAR_SLOTS - filled) + f" {step}/{total}"


def relative_time(seconds: float) -> str:
    when = datetime.now(UTC) + timedelta(seconds=max(seconds, 1))
    return discord.utils.format_dt(when, "R")


def _base(job: Job, *, title: str, colour: discord.Colour = ACCENT) -> discord.Embed:
    embed = discord.Embed(title=title, description=shorten(job.prompt, 300), colour=colour)
    embed.add_field(name="Model", value=job.model)
    embed.set_footer(text=f"Job #{job.id}")
    return embed


def queued_embed(job: Job, position: int, total: int, eta_seconds: float | None, *,
                 paused: bool = False) -> discord.Embed:
    embed = _base(job, title="Queued")
    embed.add_field(name="Position", value=f"#{position} of {total}")
    if job.params.get("credits"):
        embed.add_field(name="Cost", value=f"{job.params['credits']} credits")
    if paused:
        embed.add_field(name="Starts", value="Paused by this server's admins: when they /admin resume")
    else:
        embed.add_field(name="Starts", value=relative_time(eta_seconds) if eta_seconds is not None else "soon")
    return embed


# The file name of a progress message's preview (a training job's latest sample).
SAMPLE_FILE = "sample.png"


def progress_embed(job: Job, step: int, total: int, *, sample: str | None = None) -> discord.Embed:
    embed = _base(job, title="Training" if job.command == "train" else "Generating")
    embed.add_field(name="Progress", value=progress_bar(step, total), inline=False)
    if sample is not None:
        embed.set_image(url=f"attachment://{sample}")
    return embed


def loading_embed(job: Job, model: str, done: int, total: int) -> discord.Embed:
    """The job's model is downloading for its first use: the wait is minutes, and the member sees why."""
    embed = _base(job, title="Loading model")
    percent = min(100, round(100 * done / total)) if total else 0
    bar = progress_bar(percent, 100).rsplit(" ", 1)[0]
    embed.add_field(name="Progress", value=f"{loading_text(model, done, total)}\n{bar} {percent}%", inline=False)
    return embed


def result_embed(job: Job, filename: str, prompts: list[str] | None = None) -> discord.Embed:
    p = job.params
    if job.command == "describe":
        return _describe_embed(job, filename, prompts or [])
    embed = discord.Embed(description=shorten(job.prompt, 4000), colour=ACCENT)
    if p.get("negative_prompt"):
        embed.add_field(name="Negative", value=shorten(p["negative_prompt"], 1000), inline=False)
    if p.get("task") == "upscale":
        embed.add_field(name="Upscaler", value=job.model)
        embed.add_field(name="Size", value=f"{p.get('width')}×{p.get('height')}")
        if job.run_seconds is not None:
            embed.add_field(name="Time", value=f"{job.run_seconds:.1f} s")
        embed.add_field(name="Image", value=describe_source(p) or "", inline=False)
        embed.set_image(url=f"attachment://{filename}")
        embed.set_footer(text=f"Job #{job.id} · AI-generated")
        return embed
    if p.get("task") == "img2vid":
        return _video_embed(job, filename)
    embed.add_field(name="Model", value=job.model)
    seeds = [job.seed + i for i in range(p.get("count", 1))]
    embed.add_field(name="Seed" if len(seeds) == 1 else "Seeds", value=", ".join(str(s % SEED_LIMIT) for s in seeds))
    embed.add_field(name="Steps", value=str(p.get("steps")))
    embed.add_field(name="Guidance", value=f"{p.get('guidance', 0):g}")
    embed.add_field(name="Size", value="{}×{}".format(*delivered_size(p)))
    if p.get("hires"):
        embed.add_field(name="Hires fix", value=f"{float(p['hires']):g}x at strength {float(p.get('hires_strength', 0)):g}")
    if p.get("tile"):
        embed.add_field(name="Tiling", value="Seamless (2×2 preview attached)")
    if job.run_seconds is not None:
        embed.add_field(name="Time", value=f"{job.run_seconds:.1f} s")
    anime = p.get("anime")
    if isinstance(anime, dict) and (anime.get("reordered") or anime.get("added_quality")):
        done = [what for what, flag in (("tags reordered for Animagine", anime.get("reordered")),
                                        ("quality tags added", anime.get("added_quality"))) if flag]
        embed.add_field(name="Prompt", value=f"As used above: {' and '.join(done)}", inline=False)
    chosen = p.get("loras")
    if isinstance(chosen, list) and chosen:
        embed.add_field(name="LoRA", value=shorten(", ".join(f"{name} ({float(weight):g})" for name, weight in chosen),
                                                    1000))
    source = "\n".join(filter(None, (describe_source(p), describe_reference(p))))
    if source:
        embed.add_field(name="Image", value=source, inline=False)
    if job.notice:
        embed.add_field(name="Notice", value=shorten(job.notice, 1000), inline=False)
    embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"Job #{job.id} · AI-generated")
    return embed


def _describe_embed(job: Job, filename: str, prompts: list[str]) -> discord.Embed:
    """/describe: the prompts, numbered as their buttons are, beside the described image."""
    lines = [f"**{i + 1}.** {shorten(prompt, 900)}" for i, prompt in enumerate(prompts)]
    embed = discord.Embed(title="Prompts for this image", description="\n\n".join(lines) or "No prompts.",
                          colour=ACCENT)
    embed.add_field(name="Model", value=job.model)
    tagger = (job.params.get("extra") or {}).get("tagger")
    if tagger and (job.params.get("extra") or {}).get("anime") != "off":
        embed.add_field(name="Tagger", value=str(tagger))
    embed.set_thumbnail(url=f"attachment://{filename}")
    embed.set_footer(text=f"Job #{job.id} · press a number to imagine that prompt")
    return embed


def _video_embed(job: Job, filename: str) -> discord.Embed:
    """Parameters live here for videos (an MP4 has no PNG chunk that A1111 readers know)."""
    p = job.params
    embed = discord.Embed(description=shorten(job.prompt, 4000), colour=ACCENT)
    embed.add_field(name="Model", value=job.model)
    embed.add_field(name="Seed", value=str(job.seed % SEED_LIMIT))
    embed.add_field(name="Frames", value=f"{p.get('frames')} at {p.get('fps')} fps "
                                         f"({int(p.get('frames') or 0) / max(int(p.get('fps') or 1), 1):.1f} s)")
    embed.add_field(name="Motion", value=str(p.get("motion")))
    embed.add_field(name="Steps", value=str(p.get("steps")))
    embed.add_field(name="Size", value=f"{p.get('width')}×{p.get('height')}")
    if job.run_seconds is not None:
        embed.add_field(name="Time", value=f"{job.run_seconds:.1f} s")
    embed.add_field(name="Image", value=describe_source(p) or "", inline=False)
    if filename.endswith(".gif"):
        embed.set_image(url=f"attachment://{filename}")
    embed.set_footer(text=f"Job #{job.id} · AI-generated")
    return embed


def failure_embed(job: Job, message: str) -> discord.Embed:
    embed = _base(job, title="Not generated", colour=FAILED)
    embed.add_field(name="Why", value=shorten(message, 1000), inline=False)
    return embed


def delivered_size(p: dict[str, Any]) -> tuple[int, int]:
    """The size of the delivered image: a canvas edit's canvas, a hires fix's enlargement, else the
    size the model drew at."""
    edit = p.get("canvas")
    if isinstance(edit, dict) and edit.get("width"):
        return int(edit["width"]), int(edit["height"])
    width, height = int(p.get("width", 0)), int(p.get("height", 0))
    if p.get("hires"):
        return hires_size(width, height, float(p["hires"]))
    return width, height


def result_output(outputs: list[Output]) -> Output:
    """The file to post: the grid for a multi-image job, else the single image."""
    grid = [o for o in outputs if o.index == -1]
    return grid[0] if grid else outputs[0]


def result_file(job: Job, data: bytes, extension: str) -> discord.File:
    # Never build filenames from prompts (length limits, odd characters); ids are enough.
    return discord.File(io.BytesIO(data), filename=f"atelier_{job.id}_{job.seed}.{extension}",
                        description=shorten(job.prompt, 1000))
