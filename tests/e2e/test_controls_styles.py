"""/imagine style: end to end: packaged styles, a server's own (/admin styles), and that one
server's styles never reach another."""

from __future__ import annotations

from sqlalchemy import select

from db.models import Job
from inference.media import read_parameters
from tests.e2e.helpers import has_image

MANAGE_GUILD = 1 << 5
OTHER_OWNER = 9_300_001


def _text(inter) -> str:  # type: ignore[no-untyped-def]
    message = inter.original
    return message.content + " ".join(e.get("description", "") for e in message.embeds)


async def _slash(fake, command: str, options: dict, *, user_id: int | None = None,  # type: ignore[no-untyped-def]
                 channel_id: int | None = None):
    inter = await fake.slash(command, options, user_id=user_id or fake.user_id, channel_id=channel_id or fake.channel_id)
    await inter.wait_acked(3)
    return inter


async def test_a_packaged_style_wraps_the_prompt_and_the_png_records_it(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        typed = await fake.autocomplete("imagine", {"prompt": "x", "style": "water"}, focused="style")
        await typed.wait_acked(3)
        assert [c["value"] for c in typed.choices] == ["watercolor"]
        everything = await fake.autocomplete("imagine", {"prompt": "x", "style": ""}, focused="style")
        await everything.wait_acked(3)
        assert len(everything.choices) == 25  # Discord's most; the file has more
        inter = await _slash(fake, "imagine", {"prompt": "a red fox", "negative": "text", "style": "Line Art",
                                               "seed": 3, "steps": 2})
        await inter.wait_for(lambda i: has_image(i.original), timeout=60)
        text = read_parameters(inter.original.attachments[0].data)
        prompt, negative, keys = text.splitlines()
        assert prompt.startswith("line art drawing a red fox, professional, sleek")
        assert negative.startswith("Negative prompt: text, anime, photorealistic")
        assert keys.startswith("Steps: 2, Sampler: ")
        async with bot.service.sessions() as s:
            job = (await s.execute(select(Job))).scalars().one()
        assert job.params["style"] == "line-art" and job.prompt == prompt

        unknown = await _slash(fake, "imagine", {"prompt": "a red fox", "style": "nope"})
        assert unknown.ephemeral and "Unknown style 'nope'" in _text(unknown)


async def test_a_servers_own_styles_stay_in_that_server(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    admin = int(fake.add_member(8101, "admin", permissions=MANAGE_GUILD)["user"]["id"])
    other = fake.add_guild("Elsewhere", OTHER_OWNER, "elsewhere")
    async with start_bot():
        refused = await _slash(fake, "admin styles add", {"name": "house", "prompt": "{prompt}, in our house style"})
        assert refused.ephemeral and "Manage Server" in _text(refused)
        added = await _slash(fake, "admin styles add", {"name": "House", "prompt": "{prompt}, in our house style",
                                                        "negative": "clutter"}, user_id=admin)
        assert "Style `house` added" in _text(added)
        twice = await _slash(fake, "admin styles add", {"name": "house", "prompt": "{prompt}"}, user_id=admin)
        assert "already has a style 'house'" in _text(twice)
        builtin = await _slash(fake, "admin styles add", {"name": "anime", "prompt": "{prompt}"}, user_id=admin)
        assert "one of the bot's own styles" in _text(builtin)
        listed = await _slash(fake, "admin styles list", {}, user_id=admin)
        assert "`house`: {prompt}, in our house style (negative: clutter)" in _text(listed)

        typed = await fake.autocomplete("imagine", {"prompt": "x", "style": "hou"}, focused="style")
        await typed.wait_acked(3)
        assert [c["value"] for c in typed.choices] == ["house"]
        inter = await _slash(fake, "imagine", {"prompt": "a kettle", "style": "house", "seed": 1, "steps": 2})
        await inter.wait_for(lambda i: has_image(i.original), timeout=60)
        text = read_parameters(inter.original.attachments[0].data)
        assert text.splitlines()[0] == "a kettle, in our house style"
        assert text.splitlines()[1].startswith("Negative prompt: clutter")

        # Another server neither lists nor applies it, nor can its admins remove it.
        theirs = await fake.autocomplete("imagine", {"prompt": "x", "style": "hou"}, focused="style",
                                         user_id=OTHER_OWNER, channel_id=other.channel_id)
        await theirs.wait_acked(3)
        assert theirs.choices == []
        elsewhere = await _slash(fake, "imagine", {"prompt": "a kettle", "style": "house"}, user_id=OTHER_OWNER,
                                 channel_id=other.channel_id)
        assert elsewhere.ephemeral and "Unknown style 'house'" in _text(elsewhere)
        not_theirs = await _slash(fake, "admin styles remove", {"name": "house"}, user_id=OTHER_OWNER,
                                  channel_id=other.channel_id)
        assert "This server has no style 'house'" in _text(not_theirs)

        removed = await _slash(fake, "admin styles remove", {"name": "house"}, user_id=admin)
        assert "Style `house` removed" in _text(removed)
        gone = await _slash(fake, "imagine", {"prompt": "a kettle", "style": "house"})
        assert gone.ephemeral and "Unknown style 'house'" in _text(gone)
