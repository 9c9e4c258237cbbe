"""The fake Discord, proven with a small real ``commands.Bot`` (app commands, views, a DynamicItem,
a reaction handler, uploads) talking to it over real HTTP and a real websocket."""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands

from tests.fakediscord import EPHEMERAL, FakeDiscord
from tests.fakediscord.fixtures import fake, running  # noqa: F401

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Regenerate(discord.ui.DynamicItem[discord.ui.Button], template=r"regen:(?P<job>\d+)"):
    def __init__(self, job: int) -> None:
        super().__init__(discord.ui.Button(label="Regenerate", custom_id=f"regen:{job}"))
        self.job = job

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Item,
                             match: re.Match[str]) -> Regenerate:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"regenerating {self.job}", ephemeral=True)


class ConfirmView(discord.ui.View):
    @discord.ui.button(label="Confirm", custom_id="confirm")
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        button.disabled = True
        await interaction.response.edit_message(content="confirmed", view=self)


class Feedback(discord.ui.Modal, title="Feedback"):
    text = discord.ui.TextInput(label="Your feedback", custom_id="feedback_text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"thanks: {self.text.value}", ephemeral=True)


class Bot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.errors: list[Exception] = []
        self.seen: list[discord.RawReactionActionEvent] = []
        self.filesize_limits: list[int] = []
        self.gate = asyncio.Event()

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Regenerate)
        self.tree.add_command(imagine)
        self.tree.add_command(confirm)
        self.tree.add_command(upscale)
        self.tree.add_command(later)
        self.tree.add_command(post)
        self.tree.add_command(dmme)
        self.tree.add_command(feedback)
        self.tree.add_command(mod)
        self.tree.add_command(lifecycle)
        await self.tree.sync()

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        if payload.user_id == self.user.id:
            return
        self.seen.append(payload)
        channel = self.get_channel(payload.channel_id)
        await channel.get_partial_message(payload.message_id).add_reaction("✅")


@app_commands.command(description="Generate an image")
async def imagine(interaction: discord.Interaction[Bot], prompt: str, steps: int = 4, model: str = "sd15",
                  size: int = 0) -> None:
    interaction.client.filesize_limits.append(interaction.filesize_limit)
    await interaction.response.defer(thinking=True)
    view = discord.ui.View(timeout=None)
    view.add_item(Regenerate(7))
    data = PNG if size == 0 else b"\x00" * size
    try:
        await interaction.followup.send(f"**{prompt}** ({steps} steps)", view=view,
                                        file=discord.File(io.BytesIO(data), "image.png"))
    except discord.HTTPException as e:
        interaction.client.errors.append(e)


@imagine.autocomplete("model")
async def model_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=m, value=m) for m in ("sd15", "sdxl", "anime") if m.startswith(current)]


@app_commands.command(description="Confirm something")
async def confirm(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("are you sure?", view=ConfirmView())


@app_commands.command(description="Upscale an image")
async def upscale(interaction: discord.Interaction, image: discord.Attachment) -> None:
    data = await image.read()
    await interaction.response.send_message(f"got {len(data)} bytes from {image.filename}")


@app_commands.command(description="Answer after the test opens the gate")
async def later(interaction: discord.Interaction[Bot], defer: bool = True) -> None:
    if defer:
        await interaction.response.defer()
    await interaction.client.gate.wait()
    try:
        if defer:
            await interaction.edit_original_response(content="done")
        else:
            await interaction.response.send_message("done")
    except discord.HTTPException as e:
        interaction.client.errors.append(e)


@app_commands.command(description="Post through the channel")
async def post(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("posting", ephemeral=True)
    await interaction.channel.send("posted", file=discord.File(io.BytesIO(PNG), "grid.png"))


@app_commands.command(description="DM me")
async def dmme(interaction: discord.Interaction) -> None:
    await interaction.user.send("hello in private")
    await interaction.response.send_message("sent", ephemeral=True)


@app_commands.command(description="Send feedback")
async def feedback(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(Feedback())


@app_commands.command(description="Exercise edits, deletes, history and fetches")
async def lifecycle(interaction: discord.Interaction) -> None:
    await interaction.response.defer()
    await interaction.edit_original_response(content="step 1")
    await interaction.followup.send("just for you", ephemeral=True)
    await interaction.edit_original_response(attachments=[discord.File(io.BytesIO(PNG), "a.png")])
    original = await interaction.original_response()
    sent = await interaction.channel.send("temporary")
    await sent.edit(content="edited")
    fetched = await interaction.channel.fetch_message(sent.id)
    history = [m.content async for m in interaction.channel.history(limit=10)]
    await sent.delete()
    await interaction.followup.send(f"{original.content}|{len(original.attachments)}|{fetched.content}|{history}")


mod = app_commands.Group(name="mod", description="Moderation", default_permissions=discord.Permissions(ban_members=True))


@mod.command(description="Ban a user from generating")
async def ban(interaction: discord.Interaction, user: discord.User, reason: str = "") -> None:
    await interaction.response.send_message(f"banned {user.id} {reason}".strip(), ephemeral=True)


@pytest_asyncio.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[Bot]:  # noqa: F811
    client = Bot()
    async with running(client, fake):
        yield client
    assert fake.unknown_routes == []


async def test_start_up_syncs_commands_and_sees_the_guild(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    assert {"imagine", "confirm", "mod", "upscale"} <= set(fake.commands)
    assert fake.sync_count == 1
    guild = bot.get_guild(fake.guild_id)
    assert guild is not None and guild.get_channel(fake.nsfw_channel_id).is_nsfw()
    assert not guild.get_channel(fake.channel_id).is_nsfw()
    assert guild.me is not None and guild.me.guild_permissions.attach_files
    assert guild.get_member(fake.user_id) is None  # no GUILD_MEMBERS intent: only the bot's member
    assert bot.application_id == fake.app_id and bot.user.id == fake.bot_user_id


async def test_defer_then_followup_with_file_replaces_thinking(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("imagine", {"prompt": "a cat", "steps": 4})
    await inter.wait_for(lambda i: i.followups)
    assert inter.acked and inter.deferred and inter.ack_type == 5
    msg = inter.original
    assert msg is inter.followups[0] and not msg.loading and msg.edits == 0
    assert msg.content == "**a cat** (4 steps)"
    assert [(a.filename, a.data, a.size) for a in msg.attachments] == [("image.png", PNG, len(PNG))]
    assert msg.custom_ids == ["regen:7"] and msg.webhook and msg.interaction_id == inter.id
    assert fake.channel_messages(fake.channel_id) == [msg]
    assert bot.filesize_limits == [fake.upload_limit]


async def test_button_click_round_trip(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("confirm")
    await inter.wait_acked()
    msg = inter.original
    click = await fake.click(msg.id, "confirm", user_id=fake.owner_id)
    await click.wait_acked()
    assert click.ack_type == 7 and click.original is msg
    assert msg.content == "confirmed" and msg.edits == 1
    assert msg.find_component("confirm")["disabled"] is True
    with pytest.raises(PermissionError):
        await fake.click(msg.id, "confirm")
    with pytest.raises(LookupError):
        await fake.click(msg.id, "nope")


async def test_dynamic_item_button(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("imagine", {"prompt": "a dog"})
    await inter.wait_for(lambda i: i.followups)
    click = await fake.click(inter.original.id, "regen:7")
    await click.wait_acked()
    assert click.original.content == "regenerating 7" and click.original.flags & EPHEMERAL and click.ephemeral
    assert click.original not in fake.channel_messages(fake.channel_id) or click.original.ephemeral


async def test_reaction_reaches_the_bot(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("confirm")
    await inter.wait_acked()
    await fake.react(inter.original.id, "🔄", user_id=fake.user_id)
    await fake.wait_for(lambda f: "✅" in inter.original.reactions)
    assert [(p.user_id, str(p.emoji), p.burst) for p in bot.seen] == [(fake.user_id, "🔄", False)]


async def test_autocomplete(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.autocomplete("imagine", {"prompt": "x", "model": "sd"}, focused="model")
    await inter.wait_acked()
    assert inter.ack_type == 8 and [c["value"] for c in inter.choices] == ["sd15", "sdxl"]


async def test_attachment_option_subcommand_dm_and_modal(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    up = await fake.slash("upscale", attachments={"image": ("in.png", PNG, "image/png")})
    await up.wait_acked()
    assert up.original.content == f"got {len(PNG)} bytes from in.png"

    ban = await fake.slash("mod ban", {"user": fake.user_id, "reason": "spam"}, user_id=fake.owner_id,
                           channel_id=fake.mod_channel_id)
    await ban.wait_acked()
    assert ban.original.content == f"banned {fake.user_id} spam" and ban.ephemeral

    dm = await fake.slash("dmme")
    await dm.wait_acked()
    assert [m.content for m in fake.dm_messages(fake.user_id)] == ["hello in private"]

    shown = await fake.slash("feedback")
    await shown.wait_acked()
    assert shown.ack_type == 9 and shown.modal["title"] == "Feedback"
    sub = await fake.submit_modal(shown, {"feedback_text": "lovely"})
    await sub.wait_acked()
    assert sub.original.content == "thanks: lovely"
    with pytest.raises(ValueError):
        await fake.slash("imagine", {"prompt": "x", "colour": "red"})


async def test_429_then_success_on_webhook_and_channel_routes(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    fake.fail_next("POST", r"^/webhooks/\d+/[^/]+$", status=429, retry_after=0.05)
    inter = await fake.slash("imagine", {"prompt": "retry"})
    await inter.wait_for(lambda i: i.followups)
    statuses = [s for m, p, s in fake.requests if m == "POST" and p.startswith("/webhooks/")]
    assert statuses == [429, 200] and not bot.errors

    fake.fail_next("POST", r"^/channels/\d+/messages$", status=429, retry_after=0.05)
    inter = await fake.slash("post")
    await fake.wait_for(lambda f: any(m.content == "posted" for m in f.channel_messages(f.channel_id)))
    statuses = [s for m, p, s in fake.requests if m == "POST" and re.match(r"^/channels/\d+/messages$", p)]
    assert statuses == [429, 200]
    posted = fake.channel_messages(fake.channel_id)[-1]
    assert posted.attachments[0].data == PNG and not posted.webhook and posted.author_id == fake.bot_user_id


async def test_token_expiry_surfaces_as_http_exception(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("later")
    await inter.wait_acked()
    fake.advance(15 * 60 + 1)
    bot.gate.set()
    await fake.wait_for(lambda f: bot.errors)
    err = bot.errors[0]
    assert isinstance(err, discord.HTTPException) and (err.status, err.code) == (401, 50027)
    assert inter.error_codes == [50027] and inter.original.loading


async def test_ack_after_deadline_is_unknown_interaction(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("later", {"defer": False})
    fake.advance(fake.ack_deadline + 0.5)
    bot.gate.set()
    await fake.wait_for(lambda f: bot.errors)
    assert isinstance(bot.errors[0], discord.NotFound) and bot.errors[0].code == 10062
    assert not inter.acked and inter.error_codes == [10062]


async def test_upload_over_limit_is_413(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    fake.upload_limit = 1024
    inter = await fake.slash("imagine", {"prompt": "huge", "size": 2048})
    await fake.wait_for(lambda f: bot.errors)
    err = bot.errors[0]
    assert (err.status, err.code) == (413, 40005)
    assert bot.filesize_limits == [1024] and inter.followups == [] and inter.original.loading


async def test_protocol_errors_over_raw_http(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    bot.gate.clear()
    inter = await fake.slash("later", {"defer": False})  # the bot waits on the gate: we answer instead
    base = f"{fake.url}/api/v10"
    async with aiohttp.ClientSession() as http:
        followup = await http.post(f"{base}/webhooks/{fake.app_id}/{inter.token}", json={"content": "x"})
        assert (followup.status, (await followup.json())["code"]) == (404, 10015)
        first = await http.post(f"{base}/interactions/{inter.id}/{inter.token}/callback", json={"type": 5})
        assert first.status == 200 and first.headers["Content-Type"] == "application/json"
        body = await first.json()
        assert body["resource"]["type"] == 5 and body["interaction"]["response_message_loading"]
        second = await http.post(f"{base}/interactions/{inter.id}/{inter.token}/callback", json={"type": 5})
        assert (second.status, (await second.json())["code"]) == (400, 40060)
        unknown = await http.get(f"{base}/nowhere", headers={"Authorization": "Bot x"})
        assert unknown.status == 404
    assert fake.unknown_routes == [("GET", "/api/v10/nowhere")]
    fake.unknown_routes.clear()
    bot.gate.set()  # now the bot answers too, and learns it was too late
    await fake.wait_for(lambda f: bot.errors)
    assert (bot.errors[0].status, bot.errors[0].code) == (400, 40060)
    assert inter.error_codes == [10015, 40060, 40060]


async def test_gateway_reconnect_resumes(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    await fake.gateway_reconnect()
    assert fake.gateway.resumes == 1 and fake.gateway.connections == 2
    inter = await fake.slash("confirm")
    await inter.wait_acked()
    assert inter.original.content == "are you sure?"


async def test_message_lifecycle(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    inter = await fake.slash("lifecycle")
    await inter.wait_for(lambda i: len(i.followups) == 2)
    original, private, summary = inter.messages
    assert original.content == "step 1" and original.edits == 2 and original.attachments[0].filename == "a.png"
    assert private.ephemeral and not summary.ephemeral
    assert summary.content == "step 1|1|edited|['edited', 'step 1']"
    deleted = [m for m in fake.messages.values() if m.deleted]
    assert [m.content for m in deleted] == ["edited"]
    assert [m.content for m in fake.channel_messages(fake.channel_id)] == ["step 1", "just for you",
                                                                          f"{summary.content}"]


@pytest.mark.slow
async def test_server_error_is_retried(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    fake.fail_next("POST", r"^/channels/\d+/messages$", status=502)
    await fake.slash("post")
    await fake.wait_for(lambda f: any(m.content == "posted" for m in f.channel_messages(f.channel_id)))
    statuses = [s for m, p, s in fake.requests if m == "POST" and p.startswith("/channels/")]
    assert statuses == [502, 200]


async def test_user_messages_hide_content_without_the_intent(fake: FakeDiscord, bot: Bot) -> None:  # noqa: F811
    seen: list[discord.Message] = []

    async def on_message(message: discord.Message) -> None:
        seen.append(message)

    bot.add_listener(on_message)
    await fake.user_message("hello bot")
    await fake.user_message(f"<@{fake.bot_user_id}> hi")
    await fake.wait_for(lambda f: len(seen) == 2)
    assert [m.content for m in seen] == ["", f"<@{fake.bot_user_id}> hi"]
