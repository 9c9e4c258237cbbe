"""/imagine's prompt controls end to end: sampler, three LoRAs, an embedding, BREAK, wildcards
(the same on Rerun, another on Reroll) and moderation of the resolved prompt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.params import wildcards
from db.models import Job
from inference import embeddings, lora
from inference.media import read_parameters
from tests.e2e.helpers import has_image
from tests.embedding_files import tiny_embeddings  # noqa: F401  (fixture)
from tests.lora_files import write_loras

COLORS = ["red", "orange", "yellow", "green", "blue", "indigo", "violet", "black", "white", "grey"]


@pytest.fixture(scope="module")
def three_loras(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inference.models import ModelRegistry

    source = Path(ModelRegistry.load(tiny_models).get("tiny-sd15").source)
    root = tmp_path_factory.mktemp("three-loras")
    write_loras(source, root / "one", sdxl=False, seed=30)
    write_loras(source, root / "two", sdxl=False, seed=40)
    return root


@pytest.fixture
def wildcard_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "wildcards"
    folder.mkdir()
    (folder / "colors.txt").write_text("\n".join(COLORS) + "\n", encoding="utf-8")
    (folder / "scene.txt").write_text("explicit sex scene\n", encoding="utf-8")
    return folder


def _text(inter) -> str:  # type: ignore[no-untyped-def]
    message = inter.original
    return message.content + " ".join(e.get("description", "") for e in message.embeds)


def _keys(parameters: str) -> list[str]:
    """The keys of the A1111 line, in order (quoted values may hold commas)."""
    line = parameters.splitlines()[-1]
    return re.findall(r'(?:^|, )([A-Za-z ]+): (?:"(?:[^"\\]|\\.)*"|[^,]*)', line)


async def _imagine(fake, **options):  # type: ignore[no-untyped-def]
    inter = await fake.slash("imagine", options, user_id=fake.user_id, channel_id=fake.channel_id)
    await inter.wait_acked(3)
    return inter


async def _done(inter):  # type: ignore[no-untyped-def]
    await inter.wait_for(lambda i: has_image(i.original), timeout=90)
    return read_parameters(inter.original.attachments[0].data)


async def test_sampler_and_break_in_the_png(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        inter = await _imagine(fake, prompt="a red fox BREAK in the snow", sampler="DPM++ 2M Karras", seed=4, steps=2)
        text = await _done(inter)
        assert text.splitlines()[0] == "a red fox BREAK in the snow"
        assert _keys(text)[:6] == ["Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size"]
        assert "Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 4" in text
        async with bot.service.sessions() as s:
            job = (await s.execute(select(Job))).scalars().one()
        assert job.params["scheduler"] == "dpmpp-2m-karras"

        heun = await _imagine(fake, prompt="a red fox", sampler="Heun", seed=4, steps=2)
        assert "Sampler: Heun, CFG scale: 7" in await _done(heun)
        lcm = await _imagine(fake, prompt="a red fox", sampler="LCM")
        assert lcm.ephemeral and "LCM only works with models distilled for it" in _text(lcm)
        lightning = await _imagine(fake, prompt="a red fox", sampler="DPM++ SDE Karras", model="tiny-sdxl-lightning")
        assert lightning.ephemeral and "few-step distilled model" in _text(lightning)


async def test_three_loras_and_an_embedding(fake, start_bot, three_loras, tiny_embeddings,  # noqa: F811
                                            monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_LORA_DIR", str(three_loras))
    monkeypatch.setenv("ATELIER_EMBEDDINGS_DIR", str(tiny_embeddings))
    async with start_bot() as bot:
        for option in ("lora2", "lora3"):
            typed = await fake.autocomplete("imagine", {"prompt": "x", option: "two/"}, focused=option)
            await typed.wait_acked(3)
            assert [c["value"] for c in typed.choices] == ["two/diffusers-style", "two/kohya-style"]
        inter = await _imagine(fake, prompt="a red fox", negative="sd15-one, blurry", seed=6, steps=2,
                               lora="one/kohya-style", lora_weight=0.5, lora2="two/diffusers-style", lora2_weight=0.7,
                               lora3="one/diffusers-style")
        text = await _done(inter)
        assert text.splitlines()[0] == ("a red fox <lora:one/kohya-style:0.5> <lora:two/diffusers-style:0.7> "
                                        "<lora:one/diffusers-style:1>")
        assert text.splitlines()[1].startswith("Negative prompt: sd15-one, blurry")
        assert _keys(text) == ["Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Lora hashes", "TI hashes"]
        hashes = ", ".join(f"{name}: {lora.short_hash(three_loras / (name + '.safetensors'))}"
                           for name in ("one/kohya-style", "two/diffusers-style", "one/diffusers-style"))
        assert f'Lora hashes: "{hashes}"' in text
        assert f'TI hashes: "sd15-one: {embeddings.short_hash(tiny_embeddings / "sd15-one.pt")}"' in text
        async with bot.service.sessions() as s:
            job = (await s.execute(select(Job))).scalars().one()
        assert job.params["embeddings"] == ["sd15-one"] and len(job.params["loras"]) == 3

        # A fourth (typed) LoRA is one too many; an SDXL embedding on SD 1.5 is refused at once.
        four = await _imagine(fake, prompt="a fox <lora:two/kohya-style:0.3>", lora="one/kohya-style",
                              lora2="two/diffusers-style", lora3="one/diffusers-style")
        assert four.ephemeral and "at most 3 LoRAs; this one names 4" in _text(four)
        same = await _imagine(fake, prompt="a fox", lora="one/kohya-style", lora2="one/kohya-style")
        assert same.ephemeral and "`lora2` names a LoRA this job already uses" in _text(same)
        weight = await _imagine(fake, prompt="a fox", lora3_weight=0.4)
        assert weight.ephemeral and "You set `lora3_weight` but no LoRA" in _text(weight)
        wrong = await _imagine(fake, prompt="a fox", negative="sdxl-neg", seed=1, steps=2)
        assert wrong.ephemeral and "The embedding 'sdxl-neg' is made for SDXL models and tiny-sd15 is SD 1.5" \
            in _text(wrong)


async def test_wildcards_resolve_by_seed_same_on_rerun_other_on_reroll(fake, start_bot, wildcard_dir,
                                                                      monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_WILDCARDS_DIR", str(wildcard_dir))
    template = "a {small|big} __colors__ fox"
    async with start_bot() as bot:
        inter = await _imagine(fake, prompt=template, seed=8, steps=2)
        text = await _done(inter)
        resolved = wildcards.resolve(template, 8, wildcard_dir)
        assert text.splitlines()[0] == resolved and "{" not in resolved and "__" not in resolved
        assert inter.original.embeds[0]["description"] == resolved
        parent = await bot.service.job_for_message(inter.original.id)
        assert parent.prompt == resolved and parent.params["prompt_template"] == template

        rerun = await fake.click(inter.original.id, f"atelier:acct:rerun:{parent.id}", user_id=fake.user_id)
        assert (await _done(rerun)).splitlines()[0] == resolved

        # Reroll: a new seed, picked here as one that resolves to another prompt.
        seed = next(s for s in range(100, 200) if wildcards.resolve(template, s, wildcard_dir) != resolved)
        monkeypatch.setattr("bot.services.jobs.secrets.randbelow", lambda _limit: seed)
        reroll = await fake.click(inter.original.id, f"atelier:reroll:{parent.id}", user_id=fake.user_id)
        rerolled = (await _done(reroll)).splitlines()[0]
        assert rerolled == wildcards.resolve(template, seed, wildcard_dir) != resolved
        child = await bot.service.job_for_message(reroll.original.id)
        assert child.params["prompt_template"] == template and child.seed == seed

        missing = await _imagine(fake, prompt="a __nope__ fox")
        assert missing.ephemeral and "There is no wildcard `__nope__`" in _text(missing)
        broken = await _imagine(fake, prompt="a {red|blue fox")
        assert broken.ephemeral and "variants do not parse" in _text(broken)


async def test_a_banned_word_reached_through_a_wildcard_is_refused(fake, start_bot, wildcard_dir,
                                                                   monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_WILDCARDS_DIR", str(wildcard_dir))
    async with start_bot() as bot:
        # The command's global check saw only the template; the submission judges what it resolves to.
        inter = await _imagine(fake, prompt="__scene__ on a beach")
        await inter.wait_for(lambda i: i.followups, timeout=30)
        (reply,) = inter.followups
        text = " ".join(e.get("description", "") + e.get("title", "") for e in reply.embeds)
        assert reply.ephemeral and "Prompt refused" in text and "sexual" in text
        assert inter.original.deleted, "the public placeholder is gone"
        async with bot.service.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(Job)) == 0
