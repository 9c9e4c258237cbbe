"""/settings and /admin defaults end to end: stored defaults apply to /imagine, /anime and /pose
where an option is left out, an option typed wins, the panel's controls change them (also after a
restart, and only for their member), private results stay private, /forget and /export cover them."""

from __future__ import annotations

import asyncio
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
        assert set(_panel_ids(panel)) == {"model", "aspect", "private", "remix", "negative", "reset"}
        assert _panel_ids(panel)["model"] == f"atelier:settings:model:{fake.user_id}"
        assert _fields(panel)["Model"] == "the server's default model"

        await _press(fake, panel, "model", values=["tiny-sdxl"])
        await _press(fake, panel, "aspect", values=["9:16"])
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
        assert (mine.model, mine.aspect, mine.negative, mine.private, mine.remix) == (
            "tiny-sdxl", "9:16", "lowres, watermark", True, True)

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
