"""/settings and /admin defaults end to end: stored defaults apply to /imagine, /anime and /pose
where an option is left out, an option typed wins, the panel's controls change them (also after a
restart, and only for their member), private results stay private, /forget and /export cover them."""

from __future__ import annotations

import json

from tests.accounts.engines import ScriptedEngine
from tests.e2e.helpers import has_image

OTHER = 7101


async def _slash(fake, command: str, options: dict | None = None, user_id: int | None = None, **kw):  # type: ignore[no-untyped-def]
    inter = await fake.slash(command, options or {}, user_id=user_id or fake.user_id, **kw)
    await inter.wait_acked(3)
    return inter


def _fields(message) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {f["name"]: f["value"] for f in message.embeds[0].get("fields", [])}


def _error(inter) -> str:  # type: ignore[no-untyped-def]
    return inter.original.embeds[0]["description"]


def _own_negative(job) -> str:  # type: ignore[no-untyped-def]
    """The negative prompt as the member's side set it (moderation appends its safety terms in SFW channels)."""
    return job.params["negative_prompt"].split("nsfw, nude")[0].rstrip(", ")


async def _job_of(fake, bot, options: dict, user_id: int | None = None, **kw):  # type: ignore[no-untyped-def]
    inter = await _slash(fake, "imagine", {"prompt": "a red fox", "seed": 1, **options}, user_id, **kw)
    await inter.wait_for(lambda i: has_image(i.original), timeout=60)
    return inter, await bot.service.job_for_message(inter.original.id)


async def test_settings_remix_on_and_off(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        inter = await _slash(fake, "settings", {"remix": "on"})
        assert inter.ephemeral and inter.original.content == "Saved: remix on."
        assert _fields(inter.original)["Remix"] == "**on**"
        assert await bot.preferences.remix(fake.user_id, fake.guild_id) is True
        assert await bot.preferences.remix(fake.owner_id, fake.guild_id) is False  # someone else's
        off = await _slash(fake, "settings", {"remix": "off"})
        assert off.original.content == "Saved: remix off."
        assert await bot.preferences.remix(fake.user_id, fake.guild_id) is False


async def test_defaults_apply_to_imagine_and_typed_options_win(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        saved = await _slash(fake, "settings", {"model": "tiny-sdxl", "aspect": "16:9", "negative": "blurry, text",
                                                "steps": 6})
        assert saved.original.content == "Saved: model tiny-sdxl, aspect 16:9, negative prompt blurry, text, steps 6."
        fields = _fields(saved.original)
        assert fields["Model"] == "**tiny-sdxl**" and fields["Steps"] == "**6**"

        _, job = await _job_of(fake, bot, {})
        assert (job.model, job.params["aspect"], _own_negative(job), job.params["steps"]) == (
            "tiny-sdxl", "16:9", "blurry, text", 6)
        assert job.params["width"] > job.params["height"]
        _, typed = await _job_of(fake, bot, {"model": "tiny-sd15", "aspect": "1:1", "negative": "fog", "steps": 3})
        assert (typed.model, typed.params["aspect"], _own_negative(typed), typed.params["steps"]) == (
            "tiny-sd15", "1:1", "fog", 3)
        # A default that doesn't fit the model typed is passed over: tiny-sdxl-lightning takes 1-8 steps.
        await _slash(fake, "settings", {"steps": 20})
        _, lightning = await _job_of(fake, bot, {"model": "tiny-sdxl-lightning"})
        assert lightning.params["steps"] == bot.registry.get("tiny-sdxl-lightning").steps
        # Someone else's /imagine is untouched (the server's owner is a member here too).
        _, theirs = await _job_of(fake, bot, {}, user_id=fake.owner_id)
        assert (theirs.model, theirs.params["aspect"], _own_negative(theirs)) == ("tiny-sd15", "1:1", "")


async def test_settings_refuses_bad_values_with_the_reason(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        steps = await _slash(fake, "settings", {"steps": 80})
        assert steps.ephemeral and _error(steps) == "Steps must be 1-50 for tiny-sd15; you asked for 80."
        model = await _slash(fake, "settings", {"model": "sdxl-unknown", "reset": "all"})
        assert _error(model).startswith("Unknown model 'sdxl-unknown'; choose one of: tiny-sd15, tiny-sdxl")
        lightning = await _slash(fake, "settings", {"model": "tiny-sdxl-lightning", "steps": 20})
        assert _error(lightning) == "Steps must be 1-8 for tiny-sdxl-lightning; you asked for 20."
        assert (await bot.preferences.member(fake.user_id)).as_dict() == dict.fromkeys(
            ("model", "aspect", "style", "negative", "steps", "private", "remix"))


def _panel_ids(message) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {cid.split(":")[2]: cid for cid in message.custom_ids}


async def _press(fake, message, action: str, *, user_id: int | None = None, values=None):  # type: ignore[no-untyped-def]
    click = await fake.click(message.id, _panel_ids(message)[action], user_id=user_id or fake.user_id, values=values)
    await click.wait_acked(3)
    return click


async def test_panel_controls_change_defaults_for_their_member_only(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        inter = await _slash(fake, "settings")
        panel = inter.original
        assert inter.ephemeral and panel.content in ("", None)
        assert set(_panel_ids(panel)) == {"model", "aspect", "style", "private", "remix", "negative", "reset"}
        assert _panel_ids(panel)["model"] == f"atelier:settings:model:{fake.user_id}"
        assert _fields(panel)["Model"] == "the server's default model"

        await _press(fake, panel, "model", values=["tiny-sdxl"])
        await _press(fake, panel, "aspect", values=["9:16"])
        await _press(fake, panel, "style", values=["watercolor"])
        await _press(fake, panel, "private")
        await _press(fake, panel, "remix")
        fields = _fields(panel)  # the same message, edited in place
        assert (fields["Model"], fields["Aspect"], fields["Private results"], fields["Remix"]) == (
            "**tiny-sdxl**", "**9:16**", "**on**", "**on**")
        select = next(c for row in panel.components for c in row["components"] if c["custom_id"].endswith(
            f"model:{fake.user_id}"))
        assert [o["value"] for o in select["options"] if o.get("default")] == ["tiny-sdxl"]

        # The negative prompt through its modal.
        opened = await _press(fake, panel, "negative")
        assert opened.modal is not None and opened.modal["custom_id"] == f"atelier:settings-negative:{fake.user_id}"
        submitted = await fake.submit_modal(opened, {"negative": "  lowres, watermark "})
        await submitted.wait_acked(3)
        assert _fields(panel)["Negative prompt"] == "**lowres, watermark**"
        mine = await bot.preferences.member(fake.user_id)
        assert (mine.model, mine.aspect, mine.style, mine.negative, mine.private, mine.remix) == (
            "tiny-sdxl", "9:16", "watercolor", "lowres, watermark", True, True)

        # Someone else pressing the member's panel (a forwarded id) changes nothing.
        other = int(fake.add_member(OTHER, "other")["user"]["id"]) if OTHER not in fake.world.users else OTHER
        refused = await _press(fake, panel, "reset", user_id=other)
        assert "someone else's settings" in refused.original.embeds[0]["description"] and refused.ephemeral
        assert (await bot.preferences.member(fake.user_id)).model == "tiny-sdxl"

        # "No default of mine" clears one; the model select then shows it.
        await _press(fake, panel, "model", values=["-"])
        assert (await bot.preferences.member(fake.user_id)).model is None

    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:  # restarted: the panel still works
        await _press(fake, panel, "reset")
        assert (await bot.preferences.member(fake.user_id)).as_dict() == dict.fromkeys(
            ("model", "aspect", "style", "negative", "steps", "private", "remix"))
        assert _fields(panel)["Private results"] == "off"


async def test_the_negative_modal_still_saves_after_a_restart(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory):
        panel = (await _slash(fake, "settings")).original
        opened = await _press(fake, panel, "negative")
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        submitted = await fake.submit_modal(opened, {"negative": "jpeg artifacts"})
        await submitted.wait_acked(3)
        assert (await bot.preferences.member(fake.user_id)).negative == "jpeg artifacts"


async def test_admin_defaults_sit_under_member_defaults_and_stay_in_their_server(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    other = fake.add_guild("Elsewhere", OTHER, "other-owner")
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        # Members without Manage Server can't change them.
        refused = await _slash(fake, "admin defaults", {"model": "tiny-sdxl"})
        assert "Manage Server" in _error(refused)
        saved = await _slash(fake, "admin defaults", {"model": "tiny-sdxl", "negative": "watermark", "aspect": "3:2"},
                             user_id=fake.owner_id)
        assert saved.ephemeral and saved.original.content == "Saved."
        assert _fields(saved.original)["Model"] == "tiny-sdxl" and _fields(saved.original)["Steps"] == "not set"

        _, job = await _job_of(fake, bot, {})
        assert (job.model, job.params["aspect"], _own_negative(job)) == ("tiny-sdxl", "3:2", "watermark")
        # The member's own default wins over the server's, field by field.
        await _slash(fake, "settings", {"model": "tiny-sd15"})
        panel = (await _slash(fake, "settings")).original
        assert _fields(panel)["Aspect"] == "3:2 (server default)" and _fields(panel)["Model"] == "**tiny-sd15**"
        _, mine = await _job_of(fake, bot, {})
        assert (mine.model, mine.params["aspect"], _own_negative(mine)) == ("tiny-sd15", "3:2", "watermark")

        # Another server: its admin sees none of this server's defaults, and its jobs don't get them.
        theirs = await _slash(fake, "admin defaults", user_id=OTHER, channel_id=other.channel_id)
        assert set(_fields(theirs.original).values()) == {"not set"}
        _, elsewhere = await _job_of(fake, bot, {}, user_id=OTHER, channel_id=other.channel_id)
        assert (elsewhere.model, elsewhere.params["aspect"], _own_negative(elsewhere)) == ("tiny-sd15", "1:1", "")
        await _slash(fake, "admin defaults", {"reset": "all"}, user_id=OTHER, channel_id=other.channel_id)
        assert (await bot.preferences.server(fake.guild_id)).model == "tiny-sdxl"

        bad = await _slash(fake, "admin defaults", {"steps": 99}, user_id=fake.owner_id)
        assert _error(bad) == "Steps must be 1-50 for tiny-sdxl; you asked for 99."
        cleared = await _slash(fake, "admin defaults", {"reset": "model"}, user_id=fake.owner_id)
        assert _fields(cleared.original)["Model"] == "not set"


async def test_anime_and_pose_take_the_aspect_and_negative_defaults(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        await _slash(fake, "settings", {"aspect": "16:9", "negative": "lowres"})
        anime = await _slash(fake, "anime", {"prompt": "1girl, smile", "seed": 2})
        await anime.wait_for(lambda i: has_image(i.original), timeout=60)
        job = await bot.service.job_for_message(anime.original.id)
        assert (job.params["aspect"], _own_negative(job)) == ("16:9", "lowres")
        pose = await _slash(fake, "pose", {"prompt": "a dancer", "pose": "standing", "seed": 2})
        await pose.wait_for(lambda i: has_image(i.original), timeout=60)
        job = await bot.service.job_for_message(pose.original.id)
        assert job.params["width"] > job.params["height"] and _own_negative(job) == "lowres"
        # /anime offers no 4:3: a default it does not offer leaves its own (square).
        await _slash(fake, "settings", {"aspect": "4:3"})
        square = await _slash(fake, "anime", {"prompt": "1girl, smile", "seed": 3, "negative": "bad hands"})
        await square.wait_for(lambda i: has_image(i.original), timeout=60)
        job = await bot.service.job_for_message(square.original.id)
        assert (job.params["aspect"], _own_negative(job)) == ("1:1", "bad hands")


async def test_private_results_are_ephemeral_and_go_by_dm_once_the_token_expired(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    engine = ScriptedEngine()
    async with start_bot(engine_factory=engine.factory) as bot:
        await _slash(fake, "settings", {"private": "on"})
        inter, job = await _job_of(fake, bot, {})
        assert inter.ephemeral and inter.original.ephemeral and job.params["private"] is True
        assert not [m for m in fake.channel_messages(fake.channel_id) if has_image(m) and not m.ephemeral]
        # A button on the private result makes a private result too.
        reroll = await fake.click(inter.original.id, f"atelier:reroll:{job.id}")
        await reroll.wait_for(lambda i: has_image(i.original), timeout=60)
        assert reroll.ephemeral

        engine.gate.clear()
        slow = await _slash(fake, "imagine", {"prompt": "a slow painting"})
        await fake.wait_for(lambda f: engine.reached, timeout=30)
        fake.advance(16 * 60)  # the 15-minute interaction token expires while the job runs
        engine.gate.set()
        await fake.wait_for(lambda f: any(has_image(m) for m in f.dm_messages(fake.user_id)), timeout=60)
        (dm,) = [m for m in fake.dm_messages(fake.user_id) if has_image(m)]
        assert not has_image(slow.original)
        assert not [m for m in fake.channel_messages(fake.channel_id) if has_image(m) and not m.ephemeral]
        await bot.service.drain()
        assert (await bot.service.job_for_message(dm.id)).delivered

        # Turned off (the member's "off" over nothing): public again.
        await _slash(fake, "settings", {"private": "off"})
        public, job = await _job_of(fake, bot, {})
        assert not public.original.ephemeral and "private" not in job.params


async def test_export_includes_and_forget_removes_the_members_defaults(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        await _slash(fake, "settings", {"model": "tiny-sdxl", "remix": "on", "negative": "blurry"})
        await _slash(fake, "admin defaults", {"aspect": "3:2"}, user_id=fake.owner_id)
        export = await _slash(fake, "export")
        await export.wait_for(lambda i: i.original and not i.original.loading, timeout=10)
        (dm,) = fake.dm_messages(fake.user_id)
        data = json.loads(dm.attachments[0].data)
        assert data["settings"] == {"model": "tiny-sdxl", "negative": "blurry", "remix": True}

        confirm = await _slash(fake, "forget")
        click = await fake.click(confirm.original.id, f"atelier:acct:forget:{fake.user_id}")
        await click.wait_acked(3)
        assert "your /settings defaults" in confirm.original.embeds[0]["description"]
        assert (await bot.preferences.member(fake.user_id)).as_dict() == dict.fromkeys(
            ("model", "aspect", "style", "negative", "steps", "private", "remix"))
        assert (await bot.preferences.server(fake.guild_id)).aspect == "3:2"  # the server's are not the member's
        _, job = await _job_of(fake, bot, {})
        assert (job.model, job.params["aspect"]) == ("tiny-sd15", "3:2")


async def test_a_style_default_styles_imagine_unless_a_style_is_typed(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        typed = await fake.autocomplete("settings", {"style": "water"}, focused="style")
        await typed.wait_acked(3)
        assert [c["value"] for c in typed.choices] == ["watercolor"]
        unknown = await _slash(fake, "settings", {"style": "nope"})
        assert "Unknown style 'nope'" in _error(unknown)
        saved = await _slash(fake, "settings", {"style": "Line Art"})
        assert saved.original.content == "Saved: style line-art."
        _, job = await _job_of(fake, bot, {})
        assert job.params["style"] == "line-art" and job.prompt.startswith("line art drawing a red fox")
        _, typed_job = await _job_of(fake, bot, {"style": "watercolor"})
        assert typed_job.params["style"] == "watercolor"
        cleared = await _slash(fake, "settings", {"reset": "style"})
        assert cleared.original.content == "Reset your style."
        _, plain = await _job_of(fake, bot, {})
        assert "style" not in plain.params and plain.prompt == "a red fox"


async def test_a_slow_attachment_is_acknowledged_privately_too(fake, start_bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from tests.e2e.helpers import png_bytes

    monkeypatch.setattr("bot.ui.submit.ATTACHMENT_GRACE", 0.0)  # every download counts as slow: defer first
    async with start_bot(engine_factory=ScriptedEngine().factory) as bot:
        await _slash(fake, "settings", {"private": "on"})
        photo = png_bytes(Image.new("RGB", (64, 64), (200, 40, 40)))
        inter = await _slash(fake, "imagine", {"prompt": "a red fox", "seed": 1},
                             attachments={"image": ("photo.png", photo, "image/png")})
        await inter.wait_for(lambda i: has_image(i.original), timeout=60)
        assert inter.responses[0]["type"] == 5 and inter.ephemeral  # the early "thinking…" was private already
        job = await bot.service.job_for_message(inter.original.id)
        assert job.params["private"] is True
        assert not [m for m in fake.channel_messages(fake.channel_id) if has_image(m) and not m.ephemeral]
