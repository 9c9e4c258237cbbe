"""A member's account: /quota, /queue, /cancel, /history, /show, /forget, /export, and their buttons.

Buttons are DynamicItems (`atelier:acct:ACTION:ID[:PAGE[:COMMAND]]`), so history pages, Rerun and
the /forget confirmation keep working after a restart; who may press them is checked from the ids.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands, tasks

from bot.errors import NotHere, NotYours
from bot.params import describe
from bot.params.animate import stills_for_moderation
from bot.params.imagine import ImagineOptions
from bot.services.access import check_use
from bot.services.accounts import AccountService, message_link
from bot.services.quotas import QuotaStatus, job_credits
from bot.ui.buttons import guard_job_button
from bot.ui.components import custom_id as job_custom_id
from bot.ui.components import result_view
from bot.ui.preferences import is_private
from bot.ui.render import ACCENT, relative_time, result_embed, result_file, shorten
from bot.ui.submit import start
from bot.ui.tree import place_of, report_error
from inference.models import TEXT_TO_IMAGE_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier
    from bot.services.jobs import Job

log = logging.getLogger(__name__)

PREFIX = "atelier:acct"
PER_PAGE = 5
PRUNE_EVERY = timedelta(hours=6)


def acct_id(action: str, target: int, page: int | None = None, command: str | None = None) -> str:
    parts = [PREFIX, action, str(target)]
    if page is not None:
        parts.append(str(page))
        if command:
            parts.append(command)
    return ":".join(parts)


def quota_embed(status: QuotaStatus, costs: list[tuple[str, int, str]]) -> discord.Embed:
    embed = discord.Embed(title="Your credits", colour=ACCENT)
    if status.allowance is None:
        embed.description = f"Unlimited ({status.source}). Used today: {status.used} credits."
    else:
        embed.description = f"**{status.left}** of {status.allowance} credits left today ({status.source})."
        embed.add_field(name="Used today", value=f"{status.used} credits")
    embed.add_field(name="Resets", value=discord.utils.format_dt(status.resets_at, "R"))
    if costs:
        lines = [f"`{name}`: {cost} credits ({size})" for name, cost, size in costs[:10]]
        embed.add_field(name="What a default image costs", value="\n".join(lines)[:1024], inline=False)
    embed.set_footer(text="Cost = images × frames × (pixels / 512²) × steps / 5, at least 1. "
                          "Failed or canceled jobs are refunded.")
    return embed


class AccountButton(discord.ui.DynamicItem[discord.ui.Button["discord.ui.View"]],
                    template=r"atelier:acct:(?P<action>hist|rerun|forget):(?P<target>[0-9]+)"
                             r"(?::(?P<page>[0-9]+)(?::(?P<command>[a-z_]+))?)?"):
    def __init__(self, action: str, target: int, page: int | None = None, command: str | None = None, *,
                 label: str | None = None, style: discord.ButtonStyle = discord.ButtonStyle.secondary,
                 disabled: bool = False) -> None:
        super().__init__(discord.ui.Button(custom_id=acct_id(action, target, page, command),
                                           label=label or action.title(), style=style, disabled=disabled))
        self.action, self.target, self.page, self.command = action, target, page, command

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> AccountButton:
        page = int(match["page"]) if match["page"] else None
        return cls(match["action"], int(match["target"]), page, match["command"])

    async def callback(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        try:
            if self.action == "hist":
                await self._page(interaction)
            elif self.action == "rerun":
                await guard_job_button(interaction, "rerun", self.target)
                await start(interaction, lambda origin: interaction.client.accounts.rerun(job_id=self.target,
                                                                                          origin=origin))
            elif self.action == "forget":
                await self._forget(interaction)
        except Exception as exc:  # DynamicItem errors bypass the tree: report them the same way
            await report_error(interaction, exc)

    async def _page(self, interaction: discord.Interaction[Atelier]) -> None:
        if interaction.user.id != self.target:
            raise NotYours("This is someone else's history; run /history for yours.")
        embed, view = await history_message(interaction.client.accounts, self.target, self.command, self.page or 1)
        await interaction.response.edit_message(embed=embed, view=view)

    async def _forget(self, interaction: discord.Interaction[Atelier]) -> None:
        if interaction.user.id != self.target:
            raise NotYours("Only the member who asked can confirm this.")
        deleted = await interaction.client.accounts.forget(user_id=self.target)
        interaction.client.moderation.refresh_bans()
        jobs = deleted.get("jobs", 0)
        embed = discord.Embed(title="Forgotten", colour=ACCENT, description=(
            f"Deleted {jobs} job{'s' if jobs != 1 else ''} with their prompts and images, your credit "
            "history and your /settings defaults. Kept: today's credit use, any ban or allowance a server set for you, and the record "
            "of moderation decisions about you (without your prompts). Messages already posted in "
            "channels stay until someone deletes them."))
        await interaction.response.edit_message(embed=embed, view=None)


async def history_message(accounts: AccountService, user_id: int, command: str | None,
                          page: int) -> tuple[discord.Embed, discord.ui.View]:
    result = await accounts.history(user_id=user_id, command=command, page=page, per_page=PER_PAGE)
    title = "Your history" + (f": /{command}" if command else "")
    embed = discord.Embed(title=title, colour=ACCENT)
    if not result.jobs:
        embed.description = "Nothing yet. Create something with /imagine."
    for job in result.jobs:
        link = message_link(job)
        when = discord.utils.format_dt(_aware(job.created_at), "R")
        value = f"{shorten(job.prompt, 200)}\n{when}" + (f" · [message]({link})" if link else "")
        embed.add_field(name=history_title(job), value=value[:1024], inline=False)
    embed.set_footer(text=f"Page {result.page} of {result.pages} · {result.total} images · /show JOB reposts one")
    view = discord.ui.View(timeout=None)
    view.add_item(AccountButton("hist", user_id, max(result.page - 1, 1), command, label="◀ Newer",
                                disabled=result.page <= 1))
    view.add_item(AccountButton("hist", user_id, min(result.page + 1, result.pages), command, label="Older ▶",
                                disabled=result.page >= result.pages))
    return embed, view


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def history_title(job: Job) -> str:
    """A /history entry's title: the job, which command made it where that is not /imagine, the model,
    and the seed where one drew it (a /describe has none worth reusing; a LoRA's is its trigger's sample)."""
    parts = [f"#{job.id}"]
    if job.command != "imagine":
        parts.append(f"/{job.command}")
    parts.append(job.model)
    if job.command != "describe":
        parts.append(f"seed {job.seed}")
    return " · ".join(parts)[:256]


def show_view(job: Job, prompts: int = 0) -> discord.ui.View:
    """/show's buttons: a /describe result's prompt buttons; Reroll and Rerun (same seed) for what
    draws; none for a training job's sample, whose reroll would train again past /train's checks
    (who may train, the name, consent), as its first posting has none."""
    if job.command == "describe" or job.params.get("task") == "train":
        return result_view(job, prompts)
    view = discord.ui.View(timeout=None)
    view.add_item(discord.ui.Button(label="Reroll", emoji="🔄", style=discord.ButtonStyle.primary,
                                    custom_id=job_custom_id("reroll", job.id or 0)))
    view.add_item(AccountButton("rerun", job.id or 0, label="Rerun (same seed)"))
    return view


class Account(commands.Cog):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.prune.start()

    async def cog_unload(self) -> None:
        self.prune.cancel()

    @tasks.loop(seconds=PRUNE_EVERY.total_seconds())
    async def prune(self) -> None:
        try:
            await self.bot.accounts.prune()
        except Exception:
            log.exception("retention pruning failed; it will run again in %s", PRUNE_EVERY)

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction) -> None:
        self.bot.roles.remember(interaction.user)

    @commands.Cog.listener()
    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.member is not None:
            self.bot.roles.remember(payload.member)

    @app_commands.command(name="quota", description="Your credits left today, when they reset, and what jobs cost")
    async def quota(self, interaction: discord.Interaction[Atelier]) -> None:
        self.bot.roles.remember(interaction.user)
        status = await self.bot.accounts.status(user_id=interaction.user.id, guild_id=interaction.guild_id)
        costs = []
        for spec in self.bot.registry.specs():
            if spec.kind not in TEXT_TO_IMAGE_KINDS:
                continue
            params = self.bot.service.prepare_imagine(ImagineOptions(prompt="x", model=spec.name, seed=0))
            costs.append((spec.name, job_credits(params), f"{params['width']}×{params['height']}, {params['steps']} steps"))
        await interaction.response.send_message(embed=quota_embed(status, costs), ephemeral=True)

    @app_commands.command(name="queue", description="Your queued and running jobs, with positions and start times")
    async def queue(self, interaction: discord.Interaction[Atelier]) -> None:
        entries = await self.bot.accounts.queue(user_id=interaction.user.id)
        embed = discord.Embed(title="Your queue", colour=ACCENT)
        view = discord.ui.View(timeout=None)
        if not entries:
            embed.description = "Nothing queued or running."
        for entry in entries[:10]:
            job = entry.job
            if entry.position is None:
                state = f"Running: step {job.progress_step}/{job.progress_total or job.params.get('steps', '?')}"
            else:
                starts = relative_time(entry.eta_seconds) if entry.eta_seconds is not None else "soon"
                state = f"Queued: #{entry.position}, starts {starts}"
            embed.add_field(name=f"#{job.id} · {job.model}", value=f"{state}\n{shorten(job.prompt, 150)}", inline=False)
            if len(view.children) < 5:
                view.add_item(discord.ui.Button(label=f"Cancel #{job.id}", style=discord.ButtonStyle.danger,
                                                custom_id=job_custom_id("cancel", job.id)))  # type: ignore[arg-type]
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="cancel", description="Cancel a job (default: your newest queued or running one)")
    @app_commands.describe(job="The job number (shown as Job #N)")
    async def cancel(self, interaction: discord.Interaction[Atelier], job: int | None = None) -> None:
        job_id, previous = await self.bot.accounts.cancel(user_id=interaction.user.id, job_id=job,
                                                          is_admin=interaction.permissions.manage_guild,
                                                          guild_id=interaction.guild_id)
        text = "canceled." if previous == "queued" else "stopping after the current step."
        await interaction.response.send_message(f"Job #{job_id}: {text}", ephemeral=True)

    @app_commands.command(name="history", description="What you created, newest first")
    @app_commands.describe(command="Only this command (e.g. imagine)", page="Page number")
    async def history(self, interaction: discord.Interaction[Atelier], command: str | None = None,
                      page: app_commands.Range[int, 1, 10_000] = 1) -> None:
        command = command.strip().lstrip("/").lower() if command else None
        if command and not re.fullmatch(r"[a-z_]{1,32}", command):
            command = None
        embed, view = await history_message(self.bot.accounts, interaction.user.id, command, page)
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="show", description="Post a finished job again, with working buttons")
    @app_commands.describe(job="The job number (see /history)")
    async def show(self, interaction: discord.Interaction[Atelier], job: int) -> None:
        found = await self.bot.accounts.finished_job(job)
        place = place_of(interaction)
        check_use(found, place)
        self.bot.limits.take("show", interaction.user.id)
        # A refusal after this replaces it privately; a member with private results sees the repost alone.
        await interaction.response.defer(thinking=True, ephemeral=await is_private(interaction))
        data, extension = await self.bot.accounts.result_file(job, interaction.filesize_limit)
        # A video is scored on its first, middle and last frames, as when it was first posted.
        stills = await asyncio.to_thread(stills_for_moderation, [data])
        why = await self.bot.moderation.screen_repost(found, stills, guild_id=interaction.guild_id,
                                                      nsfw_channel=place.nsfw_channel)
        if why is not None:
            raise NotHere(why)
        file = result_file(found, data, extension)
        prompts = None
        if found.command == "describe":  # its prompts and their buttons (cogs/describe.py)
            prompts = await asyncio.to_thread(describe.prompts_of, data)
        view = show_view(found, len(prompts or ()))
        await interaction.followup.send(content=f"Job #{job} by <@{found.user_id}>",
                                        embed=result_embed(found, file.filename, prompts), file=file, view=view,
                                        allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="forget", description="Delete your prompts, history, images and credit records")
    async def forget(self, interaction: discord.Interaction[Atelier]) -> None:
        embed = discord.Embed(title="Forget everything about you?", colour=discord.Colour(0xE5534B), description=(
            "This deletes every prompt, image and history entry of yours, your credit records and your "
            "/settings defaults, and cancels your queued jobs. Bans, allowances and today's credit use stay, and moderation "
            "records about you stay without your prompts. It cannot be undone. /export first if you "
            "want a copy."))
        view = discord.ui.View(timeout=None)
        view.add_item(AccountButton("forget", interaction.user.id, label="Delete my data",
                                    style=discord.ButtonStyle.danger))
        await interaction.response.send_message(embed=embed, view=view, ephemeral=True)

    @app_commands.command(name="export", description="Get everything Atelier stores about you, as a JSON file in DMs")
    async def export(self, interaction: discord.Interaction[Atelier]) -> None:
        self.bot.limits.take("export", interaction.user.id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await self.bot.accounts.export(user_id=interaction.user.id)
        file = discord.File(io.BytesIO(data), filename=f"atelier-export-{interaction.user.id}.json")
        try:
            await interaction.user.send(content="Everything Atelier stores about you.", file=file)
        except discord.Forbidden:
            await interaction.followup.send("I can't send you a direct message. Allow DMs from this server's "
                                            "members (Privacy Settings) and try again.", ephemeral=True)
            return
        await interaction.followup.send(f"Sent to your DMs ({len(data) / 1024:.1f} KiB).", ephemeral=True)


async def setup(bot: Atelier) -> None:
    bot.add_dynamic_items(AccountButton)
    await bot.add_cog(Account(bot))
