"""The README's Commands table lists every command the bot registers, and its in-page links lead
to headings that exist (GitHub's anchors: lower case, punctuation dropped, spaces to dashes)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.test_discord_limits import command_payloads

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_in_page_link_leads_to_a_heading() -> None:
    anchors = {_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", README, flags=re.M)}
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and sorted(links - anchors) == []


def test_the_commands_table_lists_every_command() -> None:
    table = README[README.index("## Commands"):README.index("**About the example images.**")]
    listed = set(re.findall(r"`/([a-z_-]+)", table))
    assert {c["name"] for c in command_payloads()} - listed == set()
