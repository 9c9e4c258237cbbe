"""/imagine end to end: the real bot, tiny models, the fake Discord."""

from __future__ import annotations

import io

from PIL import Image
from sqlalchemy import select

from db.models import Job, JobStatus
from inference.media import read_parameters
from tests.e2e.helpers import has_image as _has_image
from tests.lora_files import tiny_loras  # noqa: F401  (fixture)


async def _job(bot, job_id: int | None = None) -> Job:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        query = select(Job).order_by(Job.id.desc()) if job_id is None else select(Job).where(Job.id == job_id)
        return (await s.execute(query)).scalars().first()


async def test_happy_path(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        assert "imagine" in fake.commands
        inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", "seed": 7, "steps": 4},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await inter.wait_acked(3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        message = inter.original
        (attachment,) = message.attachments
        image = Image.open(io.BytesIO(attachment.data))
        assert image.size == (512, 512)
        params = read_parameters(attachment.data)
        assert params.startswith("a lighthouse at dusk") and "Seed: 7" in params and "Model: tiny-sd15" in params
        (embed,) = message.embeds
        fields = {f["name"]: f["value"] for f in embed["fields"]}
        assert fields["Seed"] == "7" and fields["Model"] == "tiny-sd15" and fields["Steps"] == "4"
        assert embed["image"]["url"] == f"attachment://{attachment.filename}"
        ids = [c["custom_id"] for row in message.components for c in row["components"]]
        job = await _job(bot)
        assert ids == [f"atelier:reroll:{job.id}", f"atelier:upscale:{job.id}", f"atelier:subtle:{job.id}",
                       f"atelier:vary:{job.id}", f"atelier:acct:rerun:{job.id}", f"atelier:animate:{job.id}",
                       *(f"atelier:{a}:{job.id}" for a in ("region", "zoom2", "zoom15", "left", "right", "up", "down"))]
        await bot.service.drain()
        job = await _job(bot, job.id)
        assert job.status == JobStatus.completed and job.delivered and job.message_id == message.id


async def _imagine(fake, prompt: str = "a red fox in snow", user_id: int | None = None, **options):  # type: ignore[no-untyped-def]
    inter = await fake.slash("imagine", {"prompt": prompt, **options}, user_id=user_id or fake.user_id,
                             channel_id=fake.channel_id)
    await inter.wait_acked(3)
    return inter


async def _result(fake, start_bot):  # type: ignore[no-untyped-def]
    inter = await _imagine(fake, seed=11)
    await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
    return inter.original


async def test_reroll_by_reaction_and_button(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    other = fake.add_member(9001, "other")["user"]["id"]
    async with start_bot() as bot:
        first = await _result(fake, start_bot)
        parent = await bot.service.job_for_message(first.id)

        await fake.react(first.id, "🔄", user_id=int(other))
        await fake.wait_for(lambda f: any(_has_image(m) and m.id != first.id
                                          for m in f.channel_messages(fake.channel_id)), timeout=60)
        rerolled = next(m for m in fake.channel_messages(fake.channel_id) if _has_image(m) and m.id != first.id)
        assert f"<@{other}>" in rerolled.content
        child = await bot.service.job_for_message(rerolled.id)
        assert child.parent_job_id == parent.id and child.user_id == int(other) and child.seed != parent.seed
        assert child.prompt == parent.prompt

        click = await fake.click(first.id, f"atelier:reroll:{parent.id}", user_id=fake.user_id)
        await click.wait_acked(3)
        await click.wait_for(lambda i: _has_image(i.original), timeout=60)
        by_button = await bot.service.job_for_message(click.original.id)
        assert by_button.parent_job_id == parent.id and by_button.status == JobStatus.completed


async def test_buttons_work_after_restart(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        first = await _result(fake, start_bot)
        parent = await bot.service.job_for_message(first.id)
        await bot.service.drain()
    syncs = fake.sync_count
    async with start_bot() as bot:  # a new process on the same database
        assert fake.sync_count == syncs, "unchanged commands must not be synced again"
        click = await fake.click(first.id, f"atelier:reroll:{parent.id}", user_id=fake.user_id)
        await click.wait_for(lambda i: _has_image(i.original), timeout=60)
        await fake.react(first.id, "🔄", user_id=fake.user_id)
        await fake.wait_for(lambda f: any(_has_image(m) and m.id not in (first.id, click.original.id)
                                          for m in f.channel_messages(fake.channel_id)), timeout=60)


async def test_rate_limited_then_delivered(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot():
        fake.fail_next("PATCH", r"/webhooks/\d+/[^/]+/messages/@original", status=429, retry_after=0.05, count=2)
        inter = await _imagine(fake)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        assert [r for r in fake.requests if r[2] == 429], "the fault was never hit"


async def test_expired_token_delivers_to_channel(fake, start_bot, tiny_models) -> None:  # type: ignore[no-untyped-def]
    import threading

    gate = threading.Event()
    async with start_bot(engine_factory=_gated_factory(tiny_models, gate)) as bot:
        inter = await _imagine(fake, prompt="a slow painting")
        fake.advance(16 * 60)  # the 15-minute interaction token expires while the job runs
        gate.set()
        await fake.wait_for(lambda f: any(_has_image(m) and m.interaction_id is None
                                          for m in f.channel_messages(fake.channel_id)), timeout=60)
        message = next(m for m in fake.channel_messages(fake.channel_id) if _has_image(m))
        assert f"<@{fake.user_id}>" in message.content
        assert not _has_image(inter.original)
        await bot.service.drain()
        job = await _job(bot)
        assert job.delivered and job.message_id == message.id
        assert [r for r in fake.requests if r[2] == 401], "delivery must have tried the expired token first"


async def test_oversized_result_is_reencoded(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    fake.upload_limit = 120_000
    async with start_bot():
        inter = await _imagine(fake, seed=3)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        (attachment,) = inter.original.attachments
        assert attachment.size <= 120_000 and attachment.filename.endswith((".webp", ".jpg"))
        assert Image.open(io.BytesIO(attachment.data)).size == (512, 512)
        assert not [r for r in fake.requests if r[2] == 413]


async def test_fifty_concurrent_while_busy_are_all_acknowledged(fake, start_bot, tiny_models) -> None:  # type: ignore[no-untyped-def]
    import asyncio
    import threading

    gate = threading.Event()
    users = [int(fake.add_member(50_000 + n, f"user{n}")["user"]["id"]) for n in range(50)]
    async with start_bot(engine_factory=_gated_factory(tiny_models, gate)) as bot:
        busy = await _imagine(fake, prompt="keeps the worker busy")
        await fake.wait_for(lambda f: bot.pool.busy == 1, timeout=30)
        inters = await asyncio.gather(*(fake.slash("imagine", {"prompt": f"picture {n}"}, user_id=u,
                                                   channel_id=fake.channel_id) for n, u in enumerate(users)))
        await asyncio.gather(*(i.wait_acked(3) for i in inters))
        assert all(i.deferred and not i.error_codes for i in inters)
        await fake.wait_for(lambda f: all(i.original and i.original.embeds and
                                          i.original.embeds[0]["title"] == "Queued" for i in inters), timeout=30)
        positions = sorted(int(_field(i.original.embeds[0], "Position").split()[0][1:]) for i in inters)
        assert positions == list(range(1, 51))
        bot.pool.pause()
        gate.set()
        await busy.wait_for(lambda i: _has_image(i.original), timeout=60)


def _field(embed: dict, name: str) -> str:
    return next(f["value"] for f in embed["fields"] if f["name"] == name)


def _gated_factory(tiny_models, gate):  # type: ignore[no-untyped-def]
    from inference.engine import Engine
    from inference.models import ModelRegistry

    registry = ModelRegistry.load(tiny_models)

    class Gated:
        def __init__(self, device: str) -> None:
            self.inner = Engine(registry, device)

        def run(self, request, on_step=None, is_cancelled=None):  # type: ignore[no-untyped-def]
            gate.wait(60)
            return self.inner.run(request, on_step, is_cancelled)

    return Gated


async def test_bad_options_get_specific_ephemeral_errors(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    cases = [
        ({"prompt": "a cat", "steps": 0}, "Steps must be 1-50 for tiny-sd15; you asked for 0"),
        ({"prompt": "a cat", "steps": 10000}, "you asked for 10000"),
        ({"prompt": "a cat", "model": "dall-e"}, "tiny-sdxl"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"prompt": "x" * 6000}, "6000 characters"),
    ]
    async with start_bot() as bot:
        for options, needle in cases:
            inter = await fake.slash("imagine", options, user_id=fake.user_id, channel_id=fake.channel_id)
            await inter.wait_acked(3)
            assert inter.ephemeral, options
            text = " ".join(e.get("description", "") for e in inter.original.embeds)
            assert needle in text, (options, text)
        async with bot.service.sessions() as s:
            assert (await s.execute(select(Job))).scalars().first() is None, "a refused command left a job"


async def test_single_image_buttons_vary_upscale_and_rerun(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    async with start_bot() as bot:
        first = await _result(fake, start_bot)
        parent = await bot.service.job_for_message(first.id)

        subtle = await fake.click(first.id, f"atelier:subtle:{parent.id}", user_id=fake.user_id)
        await subtle.wait_for(lambda i: _has_image(i.original), timeout=60)
        params = read_parameters(subtle.original.attachments[0].data)
        assert params.startswith(parent.prompt) and "Denoising strength" in params

        upscale = await fake.click(first.id, f"atelier:upscale:{parent.id}", user_id=fake.user_id)
        await upscale.wait_for(lambda i: _has_image(i.original), timeout=60)
        assert Image.open(io.BytesIO(upscale.original.attachments[0].data)).size == (1024, 1024)

        rerun = await fake.click(first.id, f"atelier:acct:rerun:{parent.id}", user_id=fake.user_id)
        await rerun.wait_for(lambda i: _has_image(i.original), timeout=60)
        again = await bot.service.job_for_message(rerun.original.id)
        assert again.seed == parent.seed and again.parent_job_id == parent.id
        same = Image.open(io.BytesIO(rerun.original.attachments[0].data))
        assert same.tobytes() == Image.open(io.BytesIO(first.attachments[0].data)).tobytes()


async def test_channel_delivery_shrinks_until_discord_accepts(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    """A 🔄 reroll has no interaction to report the upload limit: the bot assumes the guild's,
    and when Discord answers 413 it re-encodes smaller instead of losing the result."""
    async with start_bot():
        first = await _result(fake, start_bot)
        fake.upload_limit = 120_000
        await fake.react(first.id, "🔄", user_id=fake.user_id)
        await fake.wait_for(lambda f: any(_has_image(m) and m.id != first.id
                                          for m in f.channel_messages(fake.channel_id)), timeout=60)
        message = next(m for m in fake.channel_messages(fake.channel_id) if _has_image(m) and m.id != first.id)
        assert message.attachments[0].size <= 120_000
        assert [r for r in fake.requests if r[2] == 413], "the fake should have refused the first upload"


# ----- LoRAs (ATELIER_LORA_DIR) -----


def _error_text(inter) -> str:  # type: ignore[no-untyped-def]
    return " ".join(e.get("description", "") for e in inter.original.embeds)


async def test_lora_autocomplete_and_a_job_with_a_lora(fake, start_bot, tiny_loras, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setenv("ATELIER_LORA_DIR", str(tiny_loras))
    async with start_bot() as bot:
        typed = await fake.autocomplete("imagine", {"prompt": "x", "lora": "kohya"}, focused="lora")
        await typed.wait_acked(3)
        assert [c["value"] for c in typed.choices] == ["sd15/kohya-style", "sdxl/kohya-style"]
        everything = await fake.autocomplete("imagine", {"prompt": "x", "lora": ""}, focused="lora")
        await everything.wait_acked(3)
        assert len(everything.choices) == 4

        inter = await _imagine(fake, prompt="a (lighthouse:1.3) at dusk", seed=5, steps=2,
                               lora="sd15/kohya-style", lora_weight=0.8)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        (attachment,) = inter.original.attachments
        params = read_parameters(attachment.data)
        assert params.splitlines()[0] == "a (lighthouse:1.3) at dusk <lora:sd15/kohya-style:0.8>"
        assert 'Lora hashes: "sd15/kohya-style: ' in params
        assert _field(inter.original.embeds[0], "LoRA") == "sd15/kohya-style (0.8)"
        job = await _job(bot)
        assert job.params["loras"] == [["sd15/kohya-style", 0.8]]

        # The next member's job on the same worker, without the LoRA, is untouched by it.
        plain = await _imagine(fake, prompt="a (lighthouse:1.3) at dusk", seed=5, steps=2)
        await plain.wait_for(lambda i: _has_image(i.original), timeout=60)
        again = await _imagine(fake, prompt="a (lighthouse:1.3) at dusk", seed=5, steps=2)
        await again.wait_for(lambda i: _has_image(i.original), timeout=60)
        assert plain.original.attachments[0].data == again.original.attachments[0].data
        assert plain.original.attachments[0].data != attachment.data
        assert "LoRA" not in {f["name"] for f in plain.original.embeds[0]["fields"]}


async def test_lora_refusals_are_specific_and_private(fake, start_bot, tiny_loras, monkeypatch) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setenv("ATELIER_LORA_DIR", str(tiny_loras))
    cases = [
        ({"lora": "nope"}, "Unknown LoRA 'nope'"),
        ({"lora": "../sd15/kohya-style"}, "Unknown LoRA '../sd15/kohya-style'"),
        ({"lora": "sdxl/kohya-style"}, "LoRA 'sdxl/kohya-style' is made for SDXL models and tiny-sd15 is SD 1.5"),
        ({"lora_weight": 0.5}, "You set a LoRA weight but no LoRA"),
    ]
    async with start_bot() as bot:
        for options, needle in cases:
            inter = await _imagine(fake, prompt="a cat", **options)
            assert inter.ephemeral, options
            assert needle in _error_text(inter), (options, _error_text(inter))
        async with bot.service.sessions() as s:
            assert (await s.execute(select(Job))).scalars().first() is None, "a refused command left a job"


async def test_loras_off_without_a_folder(fake, start_bot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("ATELIER_LORA_DIR", raising=False)
    async with start_bot():
        typed = await fake.autocomplete("imagine", {"prompt": "x", "lora": "s"}, focused="lora")
        await typed.wait_acked(3)
        assert typed.choices == []
        inter = await _imagine(fake, prompt="a cat", lora="sd15/kohya-style")
        assert inter.ephemeral
        assert "LoRAs are turned off on this bot (its owner has not set ATELIER_LORA_DIR)" in _error_text(inter)


async def test_a_long_prompt_runs_whole(fake, start_bot) -> None:  # type: ignore[no-untyped-def]
    prompt = ", ".join(["a lighthouse on a cliff at dusk"] * 8)  # ~250 tokens on the tiny tokenizer
    async with start_bot():
        inter = await _imagine(fake, prompt=prompt, seed=1, steps=2)
        await inter.wait_for(lambda i: _has_image(i.original), timeout=60)
        assert read_parameters(inter.original.attachments[0].data).startswith(prompt + "\n")
