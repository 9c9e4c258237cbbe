"""Remix (/settings remix:on) with the member's own prompt through the fake Discord: a Vary or a
Reroll whose modal got a new prompt takes that prompt's textual-inversion embeddings (not the
source's) and drops the source's wildcard template, so a later plain Reroll draws the member's
prompt again; a modal sent back unchanged keeps the source's prompt machinery."""

from __future__ import annotations

from inference.media import read_parameters
from tests.e2e.helpers import has_image
from tests.e2e.test_canvas import press
from tests.e2e.test_canvas_prompts import _ti
from tests.e2e.test_canvas_ui import imagine, input_id, input_value, jobs_of, text_of
from tests.embedding_files import tiny_embeddings  # noqa: F401  (fixture)


async def _remix(fake, bot, message, custom_id: str, prompt: str):  # type: ignore[no-untyped-def]
    click = await fake.click(message.id, custom_id, user_id=fake.user_id)
    await click.wait_acked(3)
    assert click.modal is not None
    submitted = await fake.submit_modal(click, {input_id(click.modal): prompt})
    await submitted.wait_for(lambda i: has_image(i.original), timeout=120)
    return submitted.original, await bot.service.job_for_message(submitted.original.id)


async def test_remixed_prompts_take_their_own_embeddings_and_no_template(fake, start_bot, tiny_embeddings,  # noqa: F811
                                                                         monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_EMBEDDINGS_DIR", str(tiny_embeddings))
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot, "a {red|blue} lighthouse, sd15-one")
        assert parent.params["embeddings"] == ["sd15-one"] and parent.params["prompt_template"]
        await (await fake.slash("settings", {"remix": "on"}, user_id=fake.user_id)).wait_acked(3)

        varied, vary = await _remix(fake, bot, result, f"atelier:vary:{parent.id}", "a red door, sd15-three")
        assert vary.params["task"] == "img2img" and vary.prompt == "a red door, sd15-three"
        assert vary.params["embeddings"] == ["sd15-three"] and "prompt_template" not in vary.params
        text = read_parameters(varied.attachments[0].data)
        assert text.startswith("a red door, sd15-three\n") and _ti(text).startswith('"sd15-three: ')
        assert "sd15-one" not in _ti(text)

        # A prompt with no embedding at all: none of the source's are carried over.
        _, plain = await _remix(fake, bot, result, f"atelier:subtle:{parent.id}", "a quiet harbour")
        assert "embeddings" not in plain.params and "prompt_template" not in plain.params

        rerolled, reroll = await _remix(fake, bot, result, f"atelier:reroll:{parent.id}", "a green boat, sd15-three")
        assert reroll.params["embeddings"] == ["sd15-three"] and "prompt_template" not in reroll.params
        assert _ti(read_parameters(rerolled.attachments[0].data)).startswith('"sd15-three: ')

        # The modal sent back unchanged: a plain Reroll of the source, its wildcards and embeddings kept.
        click = await fake.click(result.id, f"atelier:reroll:{parent.id}", user_id=fake.user_id)
        await click.wait_acked(3)
        submitted = await fake.submit_modal(click, {input_id(click.modal): input_value(click.modal)})
        await submitted.wait_for(lambda i: has_image(i.original), timeout=120)
        same = await bot.service.job_for_message(submitted.original.id)
        assert same.params["prompt_template"] == parent.params["prompt_template"]
        assert same.params["embeddings"] == ["sd15-one"] and same.seed != parent.seed

        # Remix off: a plain Reroll of the remixed job draws the member's prompt, not the source's template.
        await (await fake.slash("settings", {"remix": "off"}, user_id=fake.user_id)).wait_acked(3)
        again = await press(fake, rerolled, f"atelier:reroll:{reroll.id}")
        assert read_parameters(again.attachments[0].data).startswith("a green boat, sd15-three\n")
        again_vary = await press(fake, varied, f"atelier:reroll:{vary.id}")
        assert read_parameters(again_vary.attachments[0].data).startswith("a red door, sd15-three\n")


async def test_a_remixed_prompt_with_the_other_familys_embedding_is_refused(fake, start_bot, tiny_embeddings,  # noqa: F811
                                                                             monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_EMBEDDINGS_DIR", str(tiny_embeddings))
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot, "a lighthouse", model="tiny-sdxl")
        await (await fake.slash("settings", {"remix": "on"}, user_id=fake.user_id)).wait_acked(3)
        for action in ("vary", "reroll"):
            click = await fake.click(result.id, f"atelier:{action}:{parent.id}", user_id=fake.user_id)
            await click.wait_acked(3)
            submitted = await fake.submit_modal(click, {input_id(click.modal): "a door, sd15-three"})
            await submitted.wait_for(lambda i: i.followups, timeout=10)  # refused after the placeholder
            (reply,) = submitted.followups
            assert reply.ephemeral and submitted.original.deleted
            assert "The embedding 'sd15-three' is made for SD 1.5 models and tiny-sdxl is SDXL" in text_of(reply)
        assert [job.id for job in await jobs_of(bot, "imagine")] == [parent.id]  # nothing was queued
