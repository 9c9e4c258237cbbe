"""/help's prompt-craft pages: short, and covering what the prompt itself can do."""

from __future__ import annotations

import re

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


def test_pages_name_the_new_commands_and_buttons() -> None:
    text = " ".join(title + " " + body for title, body in PAGES)
    for phrase in ("/edit", "/describe", "/blend", "/train", "/loras", "/settings", "style_ref", "hires", "tile",
                   "Vary (Region)", "Zoom Out 2x", "Vary (Subtle)", "Vary (Strong)", "Remix", "private results",
                   "U1-U4", "V1-V4", "Rerun"):
        assert phrase in text, phrase


def test_every_command_option_a_page_shows_exists() -> None:
    """`/command option:` in a page names a real command and a real option of it (or of its subcommands)."""
    from tests.unit.test_discord_limits import command_payloads

    options: dict[str, set[str]] = {}
    for command in command_payloads():
        names: set[str] = set()
        stack = list(command.get("options") or [])
        while stack:
            option = stack.pop()
            names.add(option["name"])
            stack.extend(option.get("options") or [])
        options[command["name"]] = names
    text = " ".join(body for _, body in PAGES)
    shown = re.findall(r"`/([a-z_]+)((?: [a-z0-9_]+:[^ `]*)*)", text)
    assert len(shown) >= 8
    for command, rest in shown:
        assert command in options, command
        for option in re.findall(r" ([a-z0-9_]+):", rest):
            assert option in options[command], f"/{command} {option}:"
    for option in re.findall(r"`([a-z0-9_]+)` [0-9]", text):  # `lora_weight` 0-2, `style_weight` 0-2
        assert any(option in names for names in options.values()), option
