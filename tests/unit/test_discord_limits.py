"""Discord's limits on everything the bot registers or builds: every command of every cog, and the
components of every view and modal, at their largest (the largest ids, pages, indices, prompts).

Discord refuses a whole command sync, or a whole message, for one field over its limit; discord.py
checks few of these itself. The limits (developer documentation, "Application Commands" and
"Message Components"): command and option names 1-32 characters, descriptions 1-100, 25 options,
25 choices of at most 100 characters, 4000 characters of names, descriptions and choices per
command; 5 action rows of at most 5 buttons or one select; custom_id 100 characters; select menus
25 options with labels, values and descriptions of 100; button labels 80; modal titles 45; text
input labels 45, values up to the input's max_length, itself at most 4000.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import discord
import pytest

from bot.client import Atelier, extensions
from bot.services.imagine_checks import MAX_PROMPT
from bot.services.preferences import Defaults
from bot.settings import load_settings
from bot.ui.buttons import REMIX_TITLES, JobButton
from bot.ui.components import queued_view, result_view
from bot.ui.prompt_modal import REMIX_ACTIONS, PromptModal, checked_prompt
from cogs.account import AccountButton, show_view
from cogs.edit import RedrawButton, RegionSelect
from cogs.help import PAGES, page_view
from cogs.mod import ReviewButton
from cogs.settings import MENU_SIZE, NegativeModal, SettingsControl, panel_view
from db.models import Job
from inference.limits import MAX_STYLE_NAME, MAX_STYLE_TEMPLATE

BIG = 2**63 - 1  # the largest id a BIGINT column holds (jobs, cases)
SNOWFLAKE = 2**64 - 1  # the largest Discord id (members)
NAME = re.compile(r"^[-_\w]{1,32}$")


# ----- the command tree -----

def _walk(command: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, command
    for option in command.get("options") or []:
        yield from _walk(option, f"{path} {option['name']}")


def _characters(command: dict[str, Any]) -> int:
    """What Discord counts toward a command's 4000: names, descriptions and choices, all levels."""
    total = len(command["name"]) + len(command.get("description", ""))
    for choice in command.get("choices") or []:
        total += len(choice["name"]) + len(str(choice["value"]))
    return total + sum(_characters(o) for o in command.get("options") or [])


def command_payloads() -> list[dict[str, Any]]:
    """Every cog loaded into a bot that never connects: the payloads a sync would send."""

    async def build() -> list[dict[str, Any]]:
        bot = Atelier(load_settings(discord_token="fake.bot.token", database_url="sqlite+aiosqlite:///:memory:",
                                    devices="cpu"))
        for extension in extensions():
            await bot.load_extension(extension)
        try:
            return [command.to_dict(bot.tree) for command in bot.tree.get_commands()]
        finally:
            for extension in extensions():
                await bot.unload_extension(extension)

    return asyncio.run(build())


@pytest.fixture(scope="module")
def commands() -> list[dict[str, Any]]:
    return command_payloads()


def test_every_cog_contributes_its_commands(commands: list[dict[str, Any]]) -> None:
    names = {c["name"] for c in commands}
    assert {"imagine", "edit", "describe", "blend", "settings", "train", "loras", "admin", "help"} <= names
    assert len(names) == len(commands) <= 100  # 100 chat-input commands per application


def test_every_command_and_option_fits_discords_limits(commands: list[dict[str, Any]]) -> None:
    problems = []
    for top in commands:
        if _characters(top) > 4000:
            problems.append(f"/{top['name']}: {_characters(top)} characters in all (limit 4000)")
        for path, item in _walk(top, "/" + top["name"]):
            options = item.get("options") or []
            if not NAME.match(item["name"]) or item["name"] != item["name"].lower():
                problems.append(f"{path}: name {item['name']!r}")
            if not 1 <= len(item.get("description", "")) <= 100:
                problems.append(f"{path}: description of {len(item.get('description', ''))} characters")
            if len(options) > 25:
                problems.append(f"{path}: {len(options)} options (limit 25)")
            values = [o for o in options if o["type"] not in (1, 2)]
            required = [bool(o.get("required")) for o in values]
            if required != sorted(required, reverse=True):
                problems.append(f"{path}: a required option after an optional one")
            choices = item.get("choices") or []
            if len(choices) > 25:
                problems.append(f"{path}: {len(choices)} choices (limit 25)")
            for choice in choices:
                if not 1 <= len(choice["name"]) <= 100 or len(str(choice["value"])) > 100:
                    problems.append(f"{path}: choice {choice['name']!r}")
            if item.get("max_length", 0) > 6000:
                problems.append(f"{path}: max_length {item['max_length']} (limit 6000)")
    assert problems == []


# ----- components -----

@dataclass
class _Spec:
    name: str
    kind: str = "sd15"


class _Registry:
    def __init__(self, count: int) -> None:
        # Registry names are stored in 100 characters (a job's model column); checkpoints' are cut to 90.
        self._specs = [_Spec(f"model-{i:02d}-".ljust(100, "x")) for i in range(count)]

    def specs(self) -> list[_Spec]:
        return self._specs


class _Bot:
    registry = _Registry(40)


def check_view(view: discord.ui.View) -> list[str]:
    problems = []
    rows = view.to_components()
    if len(rows) > 5:
        problems.append(f"{len(rows)} action rows (limit 5)")
    for row in rows:
        items = row["components"]
        selects = [c for c in items if c["type"] != 2]
        if len(items) > 5 or (selects and len(items) > 1):
            problems.append(f"a row of {len(items)} components")
        for c in items:
            if not 1 <= len(c.get("custom_id", "x")) <= 100:
                problems.append(f"custom_id {c.get('custom_id')!r} of {len(c['custom_id'])} characters")
            if len(c.get("label") or "") > 80:
                problems.append(f"button label {c['label']!r}")
            if len(c.get("placeholder") or "") > 150:
                problems.append(f"placeholder {c['placeholder']!r}")
            options = c.get("options") or []
            if len(options) > 25 or c.get("max_values", 1) > max(len(options), 1):
                problems.append(f"a select of {len(options)} options, max_values {c.get('max_values')}")
            for o in options:
                if not 1 <= len(o["label"]) <= 100 or len(o["value"]) > 100 or len(o.get("description") or "") > 100:
                    problems.append(f"select option {o['label']!r}")
    return problems


def _job(command: str = "imagine", **params: Any) -> Job:
    return Job(id=BIG, command=command, user_id=SNOWFLAKE, model="m" * 100, prompt="p" * 2000, seed=2**32 - 1,
               params={"model": "m" * 100, "prompt": "p" * 2000, **params})


JOBS = {
    "single image": _job(count=1),
    "grid of four": _job(count=4),
    "anime grid": _job("anime", count=4),
    "canvas edit": _job("edit", task="inpaint"),
    "Vary (Region) result": _job("imagine", task="inpaint"),
    "upscale of a result": _job("upscale", task="upscale", source={"job_id": BIG, "index": 3}),
    "upscale of an attachment": _job("upscale", task="upscale", source={"attachment": "a.png"}),
    "video": _job("animate", task="img2vid"),
    "blend": _job("blend", count=1),
    "training sample": _job("train", task="train"),
}


@pytest.mark.parametrize("name", sorted(JOBS))
def test_result_and_show_views_fit(name: str) -> None:
    job = JOBS[name]
    assert check_view(result_view(job)) == []
    assert check_view(show_view(job)) == []


def test_describe_views_fit_with_every_prompt() -> None:
    job = _job("describe")
    for view in (result_view(job, 4), show_view(job, 4)):
        assert check_view(view) == []
        assert len(view.children) == 4


def test_other_views_fit() -> None:
    views = [queued_view(JOBS["single image"]), *(page_view(p) for p in range(len(PAGES)))]
    region = discord.ui.View(timeout=None)
    region.add_item(RegionSelect(BIG, 9, list(range(8))))
    region.add_item(RedrawButton(BIG, 9, list(range(8))))
    account = discord.ui.View(timeout=None)
    account.add_item(AccountButton("hist", SNOWFLAKE, 10_000, "c" * 32, label="Older ▶"))
    account.add_item(AccountButton("forget", SNOWFLAKE, label="Delete my data"))
    account.add_item(AccountButton("rerun", BIG, label="Rerun (same seed)"))
    account.add_item(ReviewButton(BIG))
    for action in ("reroll", "prompt", "region", "zoom15"):
        account.add_item(JobButton(action, BIG, 9))
    views += [region, account]
    long_styles = [f"style-{i:02d}-".ljust(MAX_STYLE_NAME, "s") for i in range(MENU_SIZE)]
    mine = Defaults(model="model-00-".ljust(100, "x"), style=long_styles[0], private=True, remix=True)
    views.append(panel_view(_Bot(), SNOWFLAKE, mine, Defaults(), long_styles))  # type: ignore[arg-type]
    for view in views:
        assert check_view(view) == [], view


def test_settings_panel_controls_are_routed_back() -> None:
    """Each control's custom_id, at the largest member id, matches the template that routes its clicks."""
    view = panel_view(_Bot(), SNOWFLAKE, Defaults(), Defaults(), ["watercolor"])  # type: ignore[arg-type]
    ids = [c.custom_id for c in view.children]  # type: ignore[attr-defined]
    assert len(ids) == 7 and all(SettingsControl.__discord_ui_compiled_template__.fullmatch(i) for i in ids)


# ----- modals -----

def check_modal(modal: discord.ui.Modal) -> list[str]:
    problems = []
    if not 1 <= len(modal.title) <= 45:
        problems.append(f"title {modal.title!r}")
    if len(modal.custom_id) > 100:
        problems.append(f"custom_id {modal.custom_id!r}")
    for item in modal.children:
        assert isinstance(item, discord.ui.TextInput)
        if not 1 <= len(item.label) <= 45:
            problems.append(f"label {item.label!r}")
        limit = item.max_length or 4000
        if limit > 4000 or len(item.default or "") > limit:
            problems.append(f"{item.label}: {len(item.default or '')} characters in a box of {limit}")
    return problems


async def _begin(*args: Any) -> None:
    return None


def _prompt_modal(title: str, prompt: str) -> PromptModal:
    return PromptModal(title=title, prompt=prompt, negative="", begin=_begin, job_id=BIG, index=9)


def test_remix_and_region_modals_fit_every_title() -> None:
    titles = [f"Remix: {REMIX_TITLES[action]}" for action in REMIX_ACTIONS] + ["Vary (Region): the prompt"]
    for title in titles:
        assert len(title) <= 45, title  # the modal would cut it
        assert check_modal(_prompt_modal(title, "p" * MAX_PROMPT)) == []


def test_a_styled_prompt_is_prefilled_whole_and_accepted_back() -> None:
    """A job's stored prompt is the member's (up to MAX_PROMPT) inside a style's template: Remix shows
    all of it, and what comes back unchanged is a valid prompt."""
    stored = "a" * MAX_PROMPT + " " + "s" * (MAX_STYLE_TEMPLATE - 1)
    modal = _prompt_modal("Remix: Reroll", stored)
    assert check_modal(modal) == []
    assert modal.prompt.default == stored
    assert checked_prompt(stored) == stored


def test_settings_negative_modal_fits() -> None:
    assert check_modal(NegativeModal(SNOWFLAKE, "n" * 1000)) == []


def test_the_settings_menus_show_the_members_own_choice_among_many_models() -> None:
    """A menu holds 25 options: with more models than that (a folder of checkpoints), the member's own
    default is still in it, marked as chosen."""
    mine = Defaults(model=_Bot.registry.specs()[-1].name)
    view = panel_view(_Bot(), SNOWFLAKE, mine, Defaults(), [])  # type: ignore[arg-type]
    (menu,) = [c for row in view.to_components() for c in row["components"] if c["custom_id"].endswith(
        f":model:{SNOWFLAKE}")]
    assert len(menu["options"]) == 25
    assert [o["value"] for o in menu["options"] if o.get("default")] == [mine.model]
