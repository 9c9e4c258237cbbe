"""/admin: pause and resume this server's queue, stats, quotas, retention, the server's defaults for
the image commands, and (bot owners only) a bot-wide pause, global bans and command sync.

Discord hides the group from members without Manage Server (default_permissions), and every
command checks it again on our side: server owners can change who sees commands, and clients lie.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import InvalidOption
from bot.params.bans import ban_until
from bot.params.styles import search as style_search
from bot.services.moderation import GLOBAL
from bot.services.preferences import SERVER_FIELDS
from bot.services.training import TrainingRules
from bot.ui.feature import model_choices
from bot.ui.render import ACCENT
from inference.models import ASPECTS, TEXT_TO_IMAGE_KINDS

if TYPE_CHECKING:
    from bot.client import Atelier

log = logging.getLogger(__name__)


def is_owner(interaction: discord.Interaction[Atelier]) -> bool:
    return interaction.user.id in interaction.client.settings.owner_id_set


def require_owner(interaction: discord.Interaction[Atelier], what: str) -> None:
    """Powers over every server belong to the bot's owners, never to one server's admins."""
    if not is_owner(interaction):
        raise app_commands.CheckFailure(f"Only the bot's owners (ATELIER_OWNER_IDS) can {what}.")


def _credits(value: int | None) -> str:
    if value is None:
        return "removed (the next rule applies)"
    return "unlimited" if value < 0 else f"{value} credits a day"


@app_commands.default_permissions(manage_guild=True)
@app_commands.guild_only()
class Admin(commands.GroupCog, group_name="admin", group_description="Run Atelier on this server"):
    def __init__(self, bot: Atelier) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction[Atelier]) -> bool:  # type: ignore[override]
        if interaction.guild_id is None:
            raise app_commands.NoPrivateMessage("Admin commands work in a server, not in DMs.")
        if not (interaction.permissions.manage_guild or is_owner(interaction)):
            raise app_commands.CheckFailure("You need the Manage Server permission for /admin.")
        return True

    @app_commands.command(name="pause", description="Hold this server's queued jobs; running ones finish, nothing is lost")
    @app_commands.describe(everywhere="Bot owners only: pause the whole bot, every server")
    async def pause(self, interaction: discord.Interaction[Atelier], everywhere: bool = False) -> None:
        if everywhere:
            text = ("Already paused everywhere." if self._hold_everywhere(interaction, True) else
                    "Paused in every server: running jobs finish, queued jobs wait. `/admin resume everywhere` "
                    "to continue.")
        else:
            assert interaction.guild_id is not None
            paused = await self.bot.service.pause_guild(interaction.guild_id, by=interaction.user.id)
            log.info("guild %s paused by %s", interaction.guild_id, interaction.user.id)
            text = ("This server's queue is already paused." if not paused else
                    "Paused on this server: its running jobs finish, its queued jobs wait (other servers are "
                    "not affected). /admin resume to continue.")
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="resume", description="Start this server's queued jobs again")
    @app_commands.describe(everywhere="Bot owners only: lift a pause of the whole bot")
    async def resume(self, interaction: discord.Interaction[Atelier], everywhere: bool = False) -> None:
        if everywhere:
            was = self._hold_everywhere(interaction, False)
            text = "Resumed in every server." if was else "The bot was not paused everywhere."
        else:
            assert interaction.guild_id is not None
            resumed = await self.bot.service.resume_guild(interaction.guild_id)
            log.info("guild %s resumed by %s", interaction.guild_id, interaction.user.id)
            text = ("Resumed: this server's queued jobs are starting." if resumed else
                    "This server's queue is not paused.")
            if resumed and self.bot.pool.paused:
                text += " The bot's owners have paused the whole bot, so they wait for that too."
        await interaction.response.send_message(text, ephemeral=True)

    def _hold_everywhere(self, interaction: discord.Interaction[Atelier], hold: bool) -> bool:
        """Pause (or resume) the whole bot, for its owners only; whether it was paused before."""
        require_owner(interaction, "pause the whole bot" if hold else "resume the whole bot")
        was = self.bot.pool.paused
        if hold:
            self.bot.pool.pause()
        else:
            self.bot.pool.resume()
        log.info("pool %s everywhere by owner %s", "paused" if hold else "resumed", interaction.user.id)
        return was

    @app_commands.command(name="training", description="Who may train their own LoRAs (/train) on this server")
    @app_commands.describe(enabled="Allow /train here (off by default)", role="Only members with this role may train",
                           real_people="Also allow subjects who are real people (members must confirm consent)")
    async def training(self, interaction: discord.Interaction[Atelier], enabled: bool,
                       role: discord.Role | None = None, real_people: bool = False) -> None:
        assert interaction.guild_id is not None
        rules = TrainingRules(enabled=enabled, role_id=role.id if role else None, real_people=real_people)
        await self.bot.training.set_rules(guild_id=interaction.guild_id, rules=rules, by=interaction.user.id)
        log.info("guild %s training rules %s by %s", interaction.guild_id, rules, interaction.user.id)
        text = ("Training is off on this server." if not enabled else
                f"Training is on for {role.mention if role else 'every member'}; real people as subjects: "
                f"{'allowed with the member confirming consent' if real_people else 'not allowed'}.")
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="stats", description="Jobs, GPU time, failures and top models on this server")
    @app_commands.describe(days="How many days back (default 7)")
    async def stats(self, interaction: discord.Interaction[Atelier], days: app_commands.Range[int, 1, 90] = 7) -> None:
        stats = await self.bot.accounts.stats(guild_id=interaction.guild_id, days=days)  # type: ignore[attr-defined]
        by_status = stats["by_status"]
        total = sum(by_status.values())
        embed = discord.Embed(title=f"Atelier, last {days} day{'s' if days != 1 else ''}", colour=ACCENT)
        embed.add_field(name="Jobs", value=f"{total} ({stats['members']} members)")
        embed.add_field(name="Completed", value=str(by_status.get("completed", 0)))
        embed.add_field(name="GPU time", value=f"{stats['gpu_seconds']:.1f} s")
        embed.add_field(name="Failed", value=str(by_status.get("failed", 0)))
        embed.add_field(name="Canceled", value=str(by_status.get("canceled", 0)))
        embed.add_field(name="Waiting", value=str(by_status.get("queued", 0) + by_status.get("running", 0)))
        top = "\n".join(f"`{m}`: {n}" for m, n in stats["top_models"]) or "none yet"
        embed.add_field(name="Top models", value=top, inline=False)
        per_day = "\n".join(f"{day}: {n}" for day, n in sorted(stats["per_day"].items())[-7:]) or "none yet"
        embed.add_field(name="Jobs per day", value=per_day, inline=False)
        embed.add_field(name="Models loaded", value=await self._residents(), inline=False)
        if self.bot.pool.paused:
            state = "Queue paused by the bot's owners"
        elif await self.bot.service.guild_paused(interaction.guild_id):
            state = "Queue paused on this server"
        else:
            state = "Queue running"
        embed.set_footer(text=state)
        await interaction.response.send_message(embed=embed, ephemeral=True)

    async def _residents(self) -> str:
        """What is loaded where: on a device (ready), in RAM (moved back in seconds), or running offloaded."""
        residents = getattr(self.bot.pool, "residents", None)
        if residents is None:
            return "on the remote GPU workers (see their logs)"
        rows = await asyncio.to_thread(residents)
        places = {"device": "on {}", "ram": "in RAM (from {})", "offload": "on {} with CPU offload"}
        lines = [f"`{r.name}` {places.get(r.where, '{}').format(r.device)}, {r.bytes / 1e9:.2f} GB"
                 f"{' (in use)' if r.pinned else ''}" for r in rows]
        return "\n".join(lines[:15]) + (f"\n... and {len(lines) - 15} more" if len(lines) > 15 else "") if lines \
            else "none yet (models load on first use)"

    @app_commands.command(name="quota", description="Set the daily credits for this server, a role or a member")
    @app_commands.describe(credits="Credits a day (-1: unlimited; leave empty to remove the rule)",
                           role="A role tier (members get the best of their roles)",
                           member="A member's personal allowance (wins over roles)")
    async def quota(self, interaction: discord.Interaction[Atelier], credits: int | None = None,
                    role: discord.Role | None = None, member: discord.Member | None = None) -> None:
        guild_id = interaction.guild_id
        assert guild_id is not None
        if role is not None and member is not None:
            raise app_commands.CheckFailure("Pick a role or a member, not both.")
        if member is not None:
            scope, target, who = "member", member.id, member.mention
        elif role is not None:
            scope, target, who = "role", role.id, role.mention
        else:
            scope, target, who = "guild", guild_id, "Everyone on this server (default)"
        await self.bot.accounts.set_quota(guild_id=guild_id, scope=scope, target_id=target,  # type: ignore[attr-defined, arg-type]
                                          credits=credits)
        await interaction.response.send_message(f"{who}: {_credits(credits)}.", ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="retention", description="Delete history older than N days on this server")
    @app_commands.describe(days="Days to keep prompts and images (1-3650; empty: the bot's default)")
    async def retention(self, interaction: discord.Interaction[Atelier], days: int | None = None) -> None:
        accounts = self.bot.accounts  # type: ignore[attr-defined]
        await accounts.set_retention(guild_id=interaction.guild_id, days=days)
        effective = await accounts.retention_for(interaction.guild_id)
        kept = f"{effective} days" if effective else "forever"
        await interaction.response.send_message(f"History on this server is now kept for {kept}; older jobs "
                                                "are deleted within 6 hours.", ephemeral=True)

    @app_commands.command(name="defaults", description="This server's defaults for /imagine and friends (no options: show them)")
    @app_commands.describe(model="Default model", aspect="Default shape", style="Default style",
                           negative="Default negative prompt", steps="Default steps (within the model's range)",
                           private="Members' results only they can see, unless they turn it off in /settings",
                           reset="Clear one default, or all of them (done before the other options)")
    @app_commands.choices(aspect=[app_commands.Choice(name=a, value=a) for a in ASPECTS],
                          private=[app_commands.Choice(name=v, value=v) for v in ("on", "off")],
                          reset=[app_commands.Choice(name=n, value=n) for n in ("all", *SERVER_FIELDS)])
    async def defaults(self, interaction: discord.Interaction[Atelier], model: str | None = None,
                       aspect: str | None = None, style: str | None = None, negative: str | None = None,
                       steps: int | None = None, private: str | None = None, reset: str | None = None) -> None:
        """A server's defaults sit under each member's own (/settings); only this server's admins see them."""
        guild_id = interaction.guild_id
        assert guild_id is not None
        preferences = self.bot.preferences
        changes: dict[str, object] = {name: value for name, value in (
            ("model", model), ("aspect", aspect), ("style", style), ("negative", negative), ("steps", steps),
            ("private", None if private is None else private == "on")) if value is not None}
        if changes or reset is not None:
            await preferences.set_server(guild_id, changes, by=interaction.user.id, reset=reset)
        current = await preferences.server(guild_id)
        embed = discord.Embed(title="This server's defaults", colour=ACCENT, description=(
            "Used where a member left an option out and has no default of their own (/settings)."))
        for name in SERVER_FIELDS:
            value = getattr(current, name)
            shown = "not set" if value is None else ("on" if value is True else "off" if value is False else str(value))
            embed.add_field(name=name.title(), value=shown[:1024], inline=name != "negative")
        text = "Saved." if changes or reset is not None else None
        await interaction.response.send_message(text, embed=embed, ephemeral=True)

    @defaults.autocomplete("model")
    async def defaults_model(self, interaction: discord.Interaction[Atelier], current: str
                             ) -> list[app_commands.Choice[str]]:
        return model_choices((s for s in self.bot.registry.specs() if s.kind in TEXT_TO_IMAGE_KINDS), current)

    @defaults.autocomplete("style")
    async def defaults_style(self, interaction: discord.Interaction[Atelier], current: str
                             ) -> list[app_commands.Choice[str]]:
        server = await self.bot.styles.for_guild(interaction.guild_id)
        return [app_commands.Choice(name=name, value=name) for name in style_search(current, server)]

    @app_commands.command(name="ban-global", description="Bot owners: bar a member from Atelier in every server and DMs")
    @app_commands.describe(user="The member", duration="e.g. 30m, 12h, 7d, 1w; empty for permanent",
                           reason="Shown to the member")
    async def ban_global(self, interaction: discord.Interaction[Atelier], user: discord.User,
                         duration: str | None = None, reason: str | None = None) -> None:
        require_owner(interaction, "bar members everywhere")
        until = ban_until(duration)
        await self.bot.moderation.ban(guild_id=GLOBAL, user_id=user.id, until=until, reason=reason or "",
                                      moderator_id=interaction.user.id)
        log.info("owner %s barred %s everywhere until %s", interaction.user.id, user.id, until)
        when = f"until {discord.utils.format_dt(until, 'f')}" if until else "permanently"
        await interaction.response.send_message(f"{user.mention} can no longer use Atelier anywhere (every server "
                                                f"and DMs), {when}.", ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="unban-global", description="Bot owners: lift a member's global ban")
    async def unban_global(self, interaction: discord.Interaction[Atelier], user: discord.User) -> None:
        require_owner(interaction, "lift global bans")
        if not await self.bot.moderation.unban(guild_id=GLOBAL, user_id=user.id, moderator_id=interaction.user.id):
            raise InvalidOption(f"{user} has no global ban.")
        await interaction.response.send_message(f"{user.mention}'s global ban is lifted (server bans still apply).",
                                                ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="sync", description="Bot owners: push the command list to Discord now")
    async def sync(self, interaction: discord.Interaction[Atelier]) -> None:
        require_owner(interaction, "sync commands")
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.bot.sync_commands(force=True)
        await interaction.followup.send("Commands synced.", ephemeral=True)

    styles = app_commands.Group(name="styles", description="This server's own /imagine styles")

    @styles.command(name="add", description="Add a style members can pick in /imagine style: (this server only)")
    @app_commands.describe(name="Its name (letters, digits and dashes)",
                           prompt="The template: {prompt} marks where the member's prompt goes",
                           negative="Added to the member's negative prompt")
    async def styles_add(self, interaction: discord.Interaction[Atelier], name: str, prompt: str,
                         negative: str = "") -> None:
        style = await self.bot.styles.add(guild_id=interaction.guild_id, name=name, prompt=prompt,  # type: ignore[arg-type]
                                          negative=negative, by=interaction.user.id)
        await interaction.response.send_message(f"Style `{style.name}` added: members here can pick it in "
                                                "`/imagine style:`.", ephemeral=True)

    @styles.command(name="remove", description="Remove one of this server's styles")
    async def styles_remove(self, interaction: discord.Interaction[Atelier], name: str) -> None:
        removed = await self.bot.styles.remove(guild_id=interaction.guild_id, name=name)  # type: ignore[arg-type]
        await interaction.response.send_message(f"Style `{removed}` removed.", ephemeral=True)

    @styles.command(name="list", description="This server's own styles")
    async def styles_list(self, interaction: discord.Interaction[Atelier]) -> None:
        mine = await self.bot.styles.for_guild(interaction.guild_id)
        lines = [f"`{s.name}`: {s.prompt}" + (f" (negative: {s.negative})" if s.negative else "") for s in mine.values()]
        embed = discord.Embed(title="This server's styles", colour=ACCENT,
                              description="\n".join(lines)[:4000] or "None yet: `/admin styles add` makes one. "
                              "The bot's own styles are listed in `/imagine style:`.")
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: Atelier) -> None:
    await bot.add_cog(Admin(bot))
