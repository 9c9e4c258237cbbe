"""/help's prompt-craft pages: short, and covering what the prompt itself can do."""

from __future__ import annotations

from cogs.help import PAGES


def test_a_page_explains_weights_long_prompts_and_the_lora_option() -> None:
    (body,) = [body for title, body in PAGES if "LoRA" in title]
    for phrase in ("(word:1.3)", "(word)", "[word]", "\\(", "77 tokens", "600 tokens", "/imagine lora:",
                   "lora_weight"):
        assert phrase in body, phrase


def test_pages_stay_short() -> None:
    # An embed description may hold 4,096 characters; a page is meant to be read at a glance.
    assert all(len(body) <= 1000 and len(title) <= 256 for title, body in PAGES)


def test_a_page_explains_styles_samplers_and_variants() -> None:
    (body,) = [body for title, body in PAGES if "wildcards" in title]
    for phrase in ("style:", "DPM++ 2M Karras", "{red|blue|green}", "Rerun", "Reroll", "__colors__"):
        assert phrase in body, phrase
