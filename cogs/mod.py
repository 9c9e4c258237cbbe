"""/mod: a server's moderators set the policy, read the log, ban members and remove results.

Visible only to members with Manage Server (default_permissions) and checked again on the server,
since Discord lets admins change who sees a command.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOption, UnknownJob
from bot.params.bans import ban_until
from bot.ui.components import TEMPLATE, custom_id
from bot.ui.tree import report_error
from moderation import CATEGORIES, Action, Policy

if TYPE_CHECKING:
    from bot.client import Atelier
    from bot.services.jobs import Job
    from bot.services.moderation import ModerationService

log = logging.getLogger(__name__)

CATEGORY_CHOICES = [app_commands.Choice(name=c, value=c) for c in CATEGORIES]
ACTION_CHOICES = [app_commands.Choice(name=a.value, value=a.value) for a in Action]
_LINK = re.compile(r"channels/\d+/\d+/(\d+)")


class ReviewButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
                   template=TEMPLATE.format(actions="review")):
    def __init__(self, case_id: int) -> None:
        super().__init__(discord.ui.Button(label="Request review", custom_id=custom_id("review", case_id)))
        self.case_id = case_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item[Any],
                             match: re.Match[str], /) -> ReviewButton:
        return cls(int(match["job_id"]))

    async def callback(self, interaction: discord.Interaction[Atelier]) -> None:  # type: ignore[override]
        try:
            bot = interaction.client
            case = await bot.moderation.request_review(self.case_id, interaction.user.id)
            if case is None:
                raise InvalidOption("Only the member a decision concerns can ask for its review.")
            sent = await bot.mod_channel.post(case, title=f"Review requested: case #{case.id}")
            text = ("Sent to this server's moderators. They can change the policy with /mod policy."
                    if sent else "This server has no moderation channel yet; ask an admin to set one with /mod channel.")
            await interaction.response.send_message(text, ephemeral=True)
        except Exception as exc:
            await report_error(interaction, exc)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Mod(commands.GroupCog, group_name="mod", group_description="Moderate Atelier in this server"):
    terms = app_commands.Group(name="terms", description="Extra terms this server refuses or flags")

    def __init__(self, bot: Atelier) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        if not interaction.permissions.manage_guild:
            raise app_commands.CheckFailure("Only members with the Manage Server permission can use /mod.")
        return True

    @property
    def moderation(self) -> ModerationService:
        return self.bot.moderation

    @app_commands.command(name="policy", description="View the moderation policy, or change one category")
    @app_commands.describe(category="The category to change", action="What to do with it in ordinary channels",
                           nsfw_opt_in="Allow sexual content and gore in age-restricted channels (never minors)",
                           image_threshold="NSFW image filter threshold, 0.05-1.0 (lower is stricter)")
    @app_commands.choices(category=CATEGORY_CHOICES, action=ACTION_CHOICES)
    async def policy(self, interaction: discord.Interaction, category: str | None = None, action: str | None = None,
                     nsfw_opt_in: bool | None = None, image_threshold: float | None = None) -> None:
        assert interaction.guild_id is not None
        policy = await self.moderation.policy(interaction.guild_id)
        changes = []
        data = policy.to_dict()
        if (category is None) != (action is None):
            raise InvalidOption("Give both a category and an action to change a category.")
        if category is not None and action is not None:
            if category == "minors" and action != "block":
                raise InvalidOption("Sexual content involving minors is always blocked; that can't be changed.")
            data["actions"][category] = action
            changes.append(f"{category} → {action}")
        if nsfw_opt_in is not None:
            data["nsfw_opt_in"] = nsfw_opt_in
            changes.append(f"age-restricted channels {'may' if nsfw_opt_in else 'may not'} show sexual content and gore")
        if image_threshold is not None:
            if not 0.05 <= image_threshold <= 1.0:
                raise InvalidOption(f"The image threshold must be 0.05-1.0; you gave {image_threshold:g}.")
            data["image_threshold"] = image_threshold
            changes.append(f"image threshold → {image_threshold:g}")
        if changes:
            policy = Policy.from_dict(data)
            await self.moderation.save_policy(interaction.guild_id, policy)
        embed = discord.Embed(title="Moderation policy", colour=discord.Colour(0x7C5CFF),
                              description="Changed: " + "; ".join(changes) if changes else None)
        for name in CATEGORIES:
            nsfw = policy.action_for(name, nsfw_channel=True)
            embed.add_field(name=name, value=f"{policy.actions[name].value} (age-restricted: {nsfw.value})")
        embed.add_field(name="Image filter", value=f"threshold {policy.image_threshold:g}")
        extra = sum(len(v) for v in policy.extra_terms.values())
        embed.add_field(name="Extra terms", value=str(extra))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _edit_terms(self, interaction: discord.Interaction, category: str, typed: str, *, add: bool) -> None:
        assert interaction.guild_id is not None
        term = " ".join(typed.lower().split())
        if not term or len(term) > 100:
            raise InvalidOption("A term must be 1-100 characters.")
        data = (await self.moderation.policy(interaction.guild_id)).to_dict()
        current = data["extra_terms"].setdefault(category, [])
        if add:
            if term in current:
                raise InvalidOption(f"“{term}” is already on the {category} list.")
            current.append(term)
        else:
            if term not in current:
                raise InvalidOption(f"“{term}” is not on the {category} list.")
            current.remove(term)
        await self.moderation.save_policy(interaction.guild_id, Policy.from_dict(data))
        done = f"Added “{typed}” to {category}." if add else f"Removed “{typed}” from {category}."
        await interaction.response.send_message(done, ephemeral=True)

    @terms.command(name="add", description="Refuse or flag an extra term in this server")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def terms_add(self, interaction: discord.Interaction, category: str, term: str) -> None:
        await self._edit_terms(interaction, category, term, add=True)

    @terms.command(name="remove", description="Remove an extra term")
    @app_commands.choices(category=CATEGORY_CHOICES)
    async def terms_remove(self, interaction: discord.Interaction, category: str, term: str) -> None:
        await self._edit_terms(interaction, category, term, add=False)

    @terms.command(name="list", description="List this server's extra terms")
    async def terms_list(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        policy = await self.moderation.policy(interaction.guild_id)
        embed = discord.Embed(title="Extra terms", colour=discord.Colour(0x7C5CFF))
        for category, words in sorted(policy.extra_terms.items()):
            if words:
                embed.add_field(name=category, value=", ".join(words)[:1024], inline=False)
        if not embed.fields:
            embed.description = "None yet. Add one with /mod terms add."
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="log", description="Recent moderation decisions, optionally for one member")
    async def log(self, interaction: discord.Interaction, user: discord.User | None = None) -> None:
        cases = await self.bot.cases.recent(guild_id=interaction.guild_id, user_id=user.id if user else None)
        embed = discord.Embed(title="Moderation log" + (f" for {user}" if user else ""), colour=discord.Colour(0x7C5CFF))
        for case in cases:
            what = ", ".join(case.categories) or case.reason[:60] or "-"
            embed.add_field(name=f"#{case.id} {case.action} · {discord.utils.format_dt(case.created_at, 'R')}",
                            value=f"<@{case.user_id}> {what}"[:1024], inline=False)
        if not cases:
            embed.description = "Nothing recorded."
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="ban", description="Bar a member from Atelier in this server")
    @app_commands.describe(duration="e.g. 30m, 12h, 7d, 1w; empty for permanent", reason="Shown to the member")
    async def ban(self, interaction: discord.Interaction, user: discord.User, duration: str | None = None,
                  reason: str | None = None) -> None:
        assert interaction.guild_id is not None
        until = ban_until(duration)
        await self.moderation.ban(guild_id=interaction.guild_id, user_id=user.id, until=until, reason=reason or "",
                                  moderator_id=interaction.user.id)
        when = f"until {discord.utils.format_dt(until, 'f')}" if until else "permanently"
        await interaction.response.send_message(f"{user.mention} can no longer use Atelier here, {when}.",
                                                ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="unban", description="Let a member use Atelier again")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
        assert interaction.guild_id is not None
        if not await self.moderation.unban(guild_id=interaction.guild_id, user_id=user.id,
                                           moderator_id=interaction.user.id):
            raise InvalidOption(f"{user} is not banned here.")
        await interaction.response.send_message(f"{user.mention} can use Atelier again.", ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="purge", description="Delete a posted result and mark it removed")
    @app_commands.describe(generation="The job number (from the result's footer) or a link to its message")
    async def purge(self, interaction: discord.Interaction, generation: str) -> None:
        job = await self._find_job(generation)
        if job is None or job.guild_id != interaction.guild_id:
            raise UnknownJob(f"I can't find a result {generation!r} in this server.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        deleted = False
        if job.message_id and job.channel_id:
            channel = self.bot.get_channel(job.channel_id) or await self.bot.fetch_channel(job.channel_id)
            try:
                await channel.get_partial_message(job.message_id).delete()  # type: ignore[union-attr]
                deleted = True
            except discord.NotFound:
                deleted = True
            except discord.HTTPException as exc:
                log.warning("could not delete message %s: %s", job.message_id, exc)
        await self.bot.cases.purge(job.id)  # type: ignore[arg-type]
        await self.moderation.record_action(action="purge", user_id=job.user_id, guild_id=job.guild_id,
                                            moderator_id=interaction.user.id, job_id=job.id)
        text = f"Job #{job.id} removed" + ("" if deleted else " (its message could not be deleted)") + "."
        await interaction.followup.send(text, ephemeral=True)

    async def _find_job(self, text: str) -> Job | None:
        """A job by number, message id or message link."""
        text = text.strip().lstrip("#")
        link = _LINK.search(text)
        if link:
            return await self.bot.service.job_for_message(int(link.group(1)))
        if text.isdigit():
            job = await self.bot.service.get_job(int(text))
            return job or await self.bot.service.job_for_message(int(text))
        return None

    @app_commands.command(name="channel", description="Where moderation reports and review requests go")
    async def channel(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        assert interaction.guild_id is not None
        await self.bot.cases.set_report_channel(interaction.guild_id, channel.id)
        await interaction.response.send_message(f"Moderation reports now go to {channel.mention}.", ephemeral=True)


async def setup(bot: Atelier) -> None:
    bot.add_dynamic_items(ReviewButton)
    await bot.add_cog(Mod(bot))
