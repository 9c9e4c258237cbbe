"""/train as the other commands behave: private results (/settings private) keep its acknowledgement
and answers private, and a LoRA's name, shown to others once shared, is screened like a prompt
(at /train and at /loras rename). Nothing here trains: each /train is refused before a job exists."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from db.models import Job
from db.models_moderation import ModerationCase
from db.models_training import MemberLora
from db.repositories import member_loras as loras_repo
from db.repositories import users as users_repo
from tests.e2e.conftest import db_url, start_bot  # noqa: F401  (fixtures)
from tests.training.test_e2e_train import MANAGE_GUILD, TOML, _slash, _text
from tests.training.test_trainer import training_images


async def _count(bot, model) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(model)))


async def test_train_is_private_and_its_names_are_screened(fake, start_bot, tiny_models: Path,  # type: ignore[no-untyped-def]  # noqa: F811
                                                            tmp_path: Path) -> None:
    models = tiny_models.parent / "train-screening.toml"
    models.write_text(TOML, encoding="utf-8")
    admin = int(fake.add_member(8102, "admin", permissions=MANAGE_GUILD)["user"]["id"])
    files = {"images" if i == 0 else f"image{i + 1}": (f"rosie{i}.png", data, "image/png")
             for i, data in enumerate(training_images()[:4])}  # one too few: refused after the downloads
    async with start_bot(models=models, train_devices="cpu", data_dir=tmp_path / "data",
                         nsfw_image_check=False) as bot:
        await _slash(fake, "admin training", {"enabled": True}, user_id=admin)
        await _slash(fake, "settings", {"private": "on"})

        private = await _slash(fake, "train", {"name": "Rosie", "trigger": "zxq_rosie"}, attachments=files)
        await private.wait_for(lambda i: "a LoRA needs at least 5" in _text(i), timeout=60)
        assert private.responses[0]["type"] == 5 and private.ephemeral  # "thinking…" was private already
        assert not [m for m in fake.channel_messages(fake.channel_id) if not m.ephemeral and "LoRA" in _text_of(m)]

        named = await _slash(fake, "train", {"name": "explicit sex scene", "trigger": "zxq_rosie"}, attachments=files)
        assert named.ephemeral and "Blocked (sexual)" in _text(named)
        renamed = await _slash(fake, "loras rename", {"name": "Rosie", "new_name": "explicit sex scene"})
        assert renamed.ephemeral and "Blocked (sexual)" in _text(renamed)
        assert await _count(bot, ModerationCase) == 2 and await _count(bot, Job) == 0

        # /export includes the member's LoRAs (bot/client.py wires the training service's section).
        async with bot.service.sessions.begin() as session:
            await users_repo.ensure_user(session, user_id=fake.user_id, name="member")
            await loras_repo.add(session, MemberLora(user_id=fake.user_id, guild_id=fake.guild_id, name="Rosie",
                                                     file="x.safetensors", base_model="tiny-sd15", family="sd1",
                                                     kind="subject", trigger="zxq_rosie"))
        exported = json.loads(await bot.accounts.export(user_id=fake.user_id))
        assert [lora["name"] for lora in exported["loras"]] == ["Rosie"]


def _text_of(message) -> str:  # type: ignore[no-untyped-def]
    return message.content + " ".join(e.get("description", "") or "" for e in message.embeds)


async def test_loras_only_manages_and_skips_the_cooldown(fake, start_bot) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """/loras posts nothing and queues nothing, like /settings: the member cooldown does not count it."""
    async with start_bot(cooldown=60):
        for _ in range(2):
            listed = await _slash(fake, "loras list")
            assert listed.ephemeral and "You have no LoRAs yet" in _text(listed)
