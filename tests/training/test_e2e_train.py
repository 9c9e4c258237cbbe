"""/train end to end through the fake Discord, on the tiny SD 1.5 model: an admin turns training on,
a member trains from five attachments, sees the progress and the sample, finds the LoRA in /loras,
and /imagine lora: draws with it (differently from without it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from db.models import JobStatus
from tests.e2e.conftest import db_url, start_bot  # noqa: F401  (fixtures)
from tests.e2e.helpers import has_image
from tests.training.test_trainer import training_images

MANAGE_GUILD = 1 << 5

TOML = """\
default = "tiny-sd15"
packaged = false

[models.tiny-sd15]
kind = "sd15"
source = "tiny-sd15"
steps = 2
guidance = 7.0
scheduler = "euler-a"
width = 64
height = 64
max_steps = 50
max_count = 4
# Training at the tiny model's scale: 64 px, two-step samples.
train_resolution = 64
train_sample_steps = 2
"""


def _text(inter) -> str:  # type: ignore[no-untyped-def]
    """Everything the interaction shows: its response and followups (an error after a defer is a followup)."""
    return " ".join(m.content + " ".join(e.get("description", "") or "" for e in m.embeds)
                    for m in [inter.original, *inter.followups] if m is not None)


async def _slash(fake, command: str, options: dict | None = None, *, user_id: int | None = None,  # type: ignore[no-untyped-def]
                 attachments: dict | None = None):
    inter = await fake.slash(command, options or {}, user_id=user_id or fake.user_id, channel_id=fake.channel_id,
                             attachments=attachments)
    await inter.wait_acked(10)
    return inter


@pytest.mark.slow
async def test_train_progress_loras_and_imagine(fake, start_bot, tiny_models: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    models = tiny_models.parent / "train-e2e.toml"
    models.write_text(TOML, encoding="utf-8")
    admin = int(fake.add_member(8101, "admin", permissions=MANAGE_GUILD)["user"]["id"])
    files = {"images" if i == 0 else f"image{i + 1}": (f"rosie{i}.png", data, "image/png")
             for i, data in enumerate(training_images())}
    options = {"name": "Rosie", "trigger": "zxq_rosie", "steps": 100}
    async with start_bot(models=models, train_devices="cpu", data_dir=tmp_path / "data",
                         nsfw_image_check=False) as bot:
        refused = await _slash(fake, "train", options, attachments=files)
        assert refused.ephemeral and "off on this server" in _text(refused)

        enabled = await _slash(fake, "admin training", {"enabled": True}, user_id=admin)
        assert "Training is on for every member" in enabled.original.content

        too_few = await _slash(fake, "train", options, attachments=dict(list(files.items())[:4]))
        await too_few.wait_for(lambda i: "a LoRA needs at least 5" in _text(i), timeout=60)

        progress: list[str] = []
        samples: list[str] = []

        def seen(inter) -> bool:  # type: ignore[no-untyped-def]
            message = inter.original
            for embed in message.embeds if message else []:
                progress.extend(f["value"] for f in embed.get("fields", []) if f["name"] == "Progress")
                if embed.get("title") == "Training" and (embed.get("image") or {}).get("url") == "attachment://sample.png":
                    samples.extend(a.filename for a in message.attachments)
            return has_image(message) and not any(e.get("title") == "Training" for e in message.embeds)

        inter = await _slash(fake, "train", options, attachments=files)
        await inter.wait_for(seen, timeout=600)
        assert any("/100" in bar for bar in progress)  # progress edits counted training steps
        assert "sample.png" in samples  # and showed the LoRA's sample so far
        job = await bot.service.job_for_message(inter.original.id)
        assert job.command == "train" and job.status == JobStatus.completed
        assert inter.original.components == []  # the sample is final: no buttons

        # The LoRA joins the member's space in the transaction that marks the job delivered, which commits
        # just after the result's edit reaches Discord: wait for it, as a member's next command would.
        for _ in range(200):
            if (await bot.service.job_for_message(inter.original.id)).delivered:
                break
            await asyncio.sleep(0.05)
        listed = await _slash(fake, "loras list")
        assert "**Rosie** - subject, trigger `zxq_rosie`, tiny-sd15" in listed.original.content
        other = await _slash(fake, "loras list", user_id=admin)
        assert "Rosie" not in other.original.content  # private until shared

        choices = await fake.autocomplete("imagine", {"prompt": "zxq_rosie", "lora": "ros"}, focused="lora",
                                          user_id=fake.user_id)
        await choices.wait_acked(10)
        assert [c["name"] for c in choices.choices] == ["Rosie (yours, subject, trigger zxq_rosie)"]
        value = choices.choices[0]["value"]

        drawn = {}
        for label, extra in (("plain", {}), ("lora", {"lora": value})):
            made = await _slash(fake, "imagine", {"prompt": "zxq_rosie on a beach", "seed": 5, **extra})
            await made.wait_for(lambda i: has_image(i.original), timeout=120)
            drawn[label] = made.original.attachments[0]
            made_job = await bot.service.job_for_message(made.original.id)
            if label == "lora":
                assert made_job.params["loras"][0][0].startswith(f"member:{fake.user_id}/")
        assert drawn["plain"].data != drawn["lora"].data

        stranger = await _slash(fake, "imagine", {"prompt": "x", "lora": value}, user_id=admin)
        await stranger.wait_for(lambda i: "not yours" in _text(i), timeout=30)
