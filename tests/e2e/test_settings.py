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
