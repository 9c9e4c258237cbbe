"""Canvas edits and the source's prompt machinery through the fake Discord: a Zoom Out keeps the
source's textual-inversion embeddings (and the runner applies them); a Vary (Region) with the
member's own prompt takes that prompt's embeddings and drops the source's wildcard template, so a
Reroll of it draws the member's prompt again."""

from __future__ import annotations

from inference.media import read_parameters
from tests.e2e.helpers import has_image
from tests.e2e.test_canvas import press
from tests.e2e.test_canvas_ui import imagine, input_id, open_region_modal
from tests.embedding_files import tiny_embeddings  # noqa: F401  (fixture)


def _ti(text: str) -> str:
    return next((key for key in text.splitlines()[-1].split(", TI hashes: ")[1:]), "")


async def test_canvas_edits_keep_or_renew_embeddings_with_their_prompt(fake, start_bot, tiny_embeddings,  # noqa: F811
                                                                       monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ATELIER_EMBEDDINGS_DIR", str(tiny_embeddings))
    async with start_bot() as bot:
        result, parent = await imagine(fake, bot, "a {red|blue} lighthouse, sd15-one")
        assert parent.params["embeddings"] == ["sd15-one"] and parent.params["prompt_template"]

        zoomed = await press(fake, result, f"atelier:zoom15:{parent.id}")
        zoom = await bot.service.job_for_message(zoomed.id)
        assert zoom.params["embeddings"] == ["sd15-one"] and zoom.params["prompt"] == parent.params["prompt"]
        assert _ti(read_parameters(zoomed.attachments[0].data)).startswith('"sd15-one: ')

        _, redraw = await open_region_modal(fake, result, parent.id, ["4"])
        submitted = await fake.submit_modal(redraw, {input_id(redraw.modal): "a red door, sd15-three"})
        await submitted.wait_for(lambda i: has_image(i.original), timeout=120)
        region = await bot.service.job_for_message(submitted.original.id)
        assert region.params["embeddings"] == ["sd15-three"] and "prompt_template" not in region.params
        text = read_parameters(submitted.original.attachments[0].data)
        assert text.startswith("a red door, sd15-three\n") and _ti(text).startswith('"sd15-three: ')
        assert "sd15-one" not in _ti(text)

        rerolled = await press(fake, submitted.original, f"atelier:reroll:{region.id}")
        assert read_parameters(rerolled.attachments[0].data).startswith("a red door, sd15-three\n")
