"""Dynamic batching end to end: members' compatible jobs queued behind a running one share one
pipeline call, and each member still gets, bit for bit, the image the job gives alone."""

from __future__ import annotations

import io

from PIL import Image

from inference.engine import Engine
from inference.media import read_parameters
from inference.models import ModelRegistry
from inference.types import GenerationRequest


def _png(message) -> bytes | None:  # type: ignore[no-untyped-def]
    files = [a for a in (message.attachments if message else []) if a.filename.endswith(".png")]
    return files[0].data if files else None


async def test_queued_jobs_of_three_members_run_as_one_batch(fake, start_bot, tiny_models) -> None:  # type: ignore[no-untyped-def]
    members = [int(fake.add_member(91_000 + n, f"batch{n}")["user"]["id"]) for n in range(3)]
    async with start_bot() as bot:
        first = await fake.slash("imagine", {"prompt": "keeps the worker busy", "model": "tiny-sdxl", "steps": 40},
                                 user_id=fake.user_id, channel_id=fake.channel_id)
        await first.wait_acked(3)
        await fake.wait_for(lambda f: bot.pool.busy == 1, timeout=60)
        prompts = ["a red fox in snow", "a lighthouse at dusk", "a (bright:1.3) meadow"]
        inters = []
        for n, user in enumerate(members):
            inter = await fake.slash("imagine", {"prompt": prompts[n], "model": "tiny-sdxl", "steps": 4, "seed": 100 + n},
                                     user_id=user, channel_id=fake.channel_id)
            await inter.wait_acked(3)
            inters.append(inter)
        await fake.wait_for(lambda f: all(_png(i.original) for i in [first, *inters]), timeout=180)
        assert bot.pool.workers[0].batches == 1, "the three queued jobs went into one pipeline call"
        async with bot.service.sessions() as session:
            jobs = [await bot.service.job_for_message(i.original.id) for i in inters]
        del session
    alone = Engine(ModelRegistry.load(tiny_models), "cpu")
    for inter, job in zip(inters, jobs, strict=True):
        request = GenerationRequest(job_id=job.id, **{k: v for k, v in job.params.items()
                                                      if k in GenerationRequest.__dataclass_fields__})
        delivered, lone = _png(inter.original), alone.run(request).images[0].png
        assert read_parameters(delivered) == read_parameters(lone)
        assert Image.open(io.BytesIO(delivered)).tobytes() == Image.open(io.BytesIO(lone)).tobytes()
