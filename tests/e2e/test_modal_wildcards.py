"""A prompt typed in the Vary (Region) modal is a dynamic prompt like /imagine's, through the fake
Discord: the new job's seed resolves it (the PNG and the job hold the resolved text, the template
stays for rerolls), moderation judges what it resolves to, and an unknown wildcard is refused."""

from __future__ import annotations

from sqlalchemy import func, select

from bot.params import wildcards
from db.models import Job
from inference.media import read_parameters
from tests.e2e.helpers import has_image
from tests.e2e.test_canvas_ui import imagine, input_id, open_region_modal
from tests.e2e.test_controls_prompts import wildcard_dir  # noqa: F401  (fixture)


def _said(inter) -> str:  # type: ignore[no-untyped-def]
    messages = [m for m in (inter.original, *inter.followups) if m is not None]
    return " ".join(m.content + " ".join(e.get("title", "") + e.get("description", "") for e in m.embeds)
                    for m in messages)


async def _jobs(bot) -> int:  # type: ignore[no-untyped-def]
    async with bot.service.sessions() as s:
        return int(await s.scalar(select(func.count()).select_from(Job)))


async def test_region_prompts_resolve_and_are_screened_resolved(fake, start_bot, wildcard_dir,  # noqa: F811
                                                                monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_WILDCARDS_DIR", str(wildcard_dir))
    template = "a {wooden|iron} door, __colors__"
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot)
        _, redraw = await open_region_modal(fake, result, parent.id, ["4"])
        submitted = await fake.submit_modal(redraw, {input_id(redraw.modal): template})
        await submitted.wait_for(lambda i: has_image(i.original), timeout=120)
        job = await bot.service.job_for_message(submitted.original.id)
        resolved = wildcards.resolve(template, job.seed, wildcard_dir)
        assert "{" not in resolved and "__" not in resolved
        assert job.prompt == resolved and job.params["prompt_template"] == template
        assert read_parameters(submitted.original.attachments[0].data).startswith(resolved + "\n")

        before = await _jobs(bot)
        # The modal's check saw only the template; the submission judges what it resolves to.
        _, redraw = await open_region_modal(fake, result, parent.id, ["4"])
        refused = await fake.submit_modal(redraw, {input_id(redraw.modal): "__scene__ on a beach"})
        await refused.wait_for(lambda i: "Prompt refused" in _said(i), timeout=30)
        assert "sexual" in _said(refused)
        _, redraw = await open_region_modal(fake, result, parent.id, ["4"])
        missing = await fake.submit_modal(redraw, {input_id(redraw.modal): "a __nope__ door"})
        await missing.wait_for(lambda i: "There is no wildcard" in _said(i), timeout=30)
        assert "There is no wildcard `__nope__`; ask the bot's owner which ones exist." in _said(missing)
        assert await _jobs(bot) == before
