"""Moderation cases posted to a server's moderation channel (set with /mod channel).

The moderation service reports a case through `ModChannel.report` (wired in bot/client.py);
the /mod cog's review button posts through `ModChannel.post`.
"""

from __future__ import annotations

import discord

from bot.services.cases import Cases, ModerationCase


def case_embed(case: ModerationCase, *, title: str | None = None) -> discord.Embed:
    colour = discord.Colour.red() if case.action in ("block", "ban", "purge") else discord.Colour.orange()
    embed = discord.Embed(title=title or f"Case #{case.id}: {case.action}", colour=colour,
                          timestamp=case.created_at)
    embed.add_field(name="Member", value=f"<@{case.user_id}>")
    if case.categories:
        embed.add_field(name="Categories", value=", ".join(case.categories))
    if case.layer:
        embed.add_field(name="Layer", value=case.layer + (f" ({case.score:.2f})" if case.score is not None else ""))
    if case.job_id:
        embed.add_field(name="Job", value=f"#{case.job_id}")
    if case.prompt:
        embed.add_field(name="Prompt", value=case.prompt[:1000], inline=False)
    if case.reason:
        embed.add_field(name="Reason", value=case.reason[:1000], inline=False)
    return embed


class ModChannel:
    def __init__(self, client: discord.Client, cases: Cases) -> None:
        self.client = client
        self.cases = cases

    async def post(self, case: ModerationCase, *, title: str | None = None) -> bool:
        """False when the case has no server or the server set no moderation channel."""
        if case.guild_id is None:
            return False
        channel_id = await self.cases.report_channel(case.guild_id)
        if channel_id is None:
            return False
        channel = self.client.get_channel(channel_id) or await self.client.fetch_channel(channel_id)
        await channel.send(embed=case_embed(case, title=title), allowed_mentions=discord.AllowedMentions.none())  # type: ignore[union-attr]
        return True

    async def report(self, case: ModerationCase) -> None:
        await self.post(case, title=f"Reported automatically: case #{case.id}")
