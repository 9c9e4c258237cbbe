"""Members' and servers' defaults: storage, checks, and precedence (option > member > server > model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import InvalidOption
from bot.params.imagine import ImagineOptions
from bot.services.imagine_checks import imagine_params
from bot.services.preferences import Defaults, Preferences
from db.engine import create_sessionmaker
from inference.models import ModelRegistry
from tests.db.conftest import db_engine  # noqa: F401  (fixture: SQLite and PostgreSQL)

GUILD, OTHER_GUILD, MEMBER, ADMIN = 1001, 1002, 42, 7


@pytest.fixture(scope="module")
def registry(tiny_models: Path) -> ModelRegistry:
    return ModelRegistry.load(tiny_models)


@pytest.fixture
def prefs(db_engine, registry: ModelRegistry) -> Preferences:  # noqa: F811
    return Preferences(create_sessionmaker(db_engine), registry)


def test_layers_merge_field_by_field() -> None:
    mine = Defaults(model="tiny-sdxl", private=False)
    server = Defaults(model="tiny-sd15", aspect="16:9", private=True, negative="blurry")
    merged = mine.over(server)
    assert merged == Defaults(model="tiny-sdxl", aspect="16:9", negative="blurry", private=False)
    assert Defaults().over(server) == server


def test_options_win_over_defaults_and_defaults_over_the_model(registry: ModelRegistry) -> None:
    prefs = Preferences(None, registry)  # type: ignore[arg-type]  # applying reads no database
    defaults = Defaults(model="tiny-sdxl", aspect="16:9", negative="blurry", steps=12)
    filled = imagine_params(registry, prefs.imagine_options(ImagineOptions(prompt="a fox", seed=1), defaults))
    assert (filled["model"], filled["aspect"], filled["negative_prompt"], filled["steps"]) == (
        "tiny-sdxl", "16:9", "blurry", 12)
    given = ImagineOptions(prompt="a fox", seed=1, model="tiny-sd15", aspect="1:1", negative="text", steps=5)
    explicit = imagine_params(registry, prefs.imagine_options(given, defaults))
    assert (explicit["model"], explicit["aspect"], explicit["negative_prompt"], explicit["steps"]) == (
        "tiny-sd15", "1:1", "text", 5)
    bare = imagine_params(registry, prefs.imagine_options(ImagineOptions(prompt="a fox", seed=1), Defaults()))
    assert (bare["model"], bare["aspect"], bare["negative_prompt"], bare["steps"]) == ("tiny-sd15", "1:1", "", 4)


def test_a_default_that_no_longer_fits_is_passed_over(registry: ModelRegistry) -> None:
    prefs = Preferences(None, registry)  # type: ignore[arg-type]
    # Steps beyond the model chosen in the command (tiny-sdxl-lightning: 1-8): the model's own steps.
    chosen = prefs.imagine_options(ImagineOptions(prompt="x", model="tiny-sdxl-lightning"), Defaults(steps=30))
    assert chosen.steps is None
    # quality: fast picks its own steps, so a default would make the command refuse.
    fast = prefs.imagine_options(ImagineOptions(prompt="x", quality="fast"), Defaults(steps=30))
    assert fast.steps is None
    # A model removed from the registry since: the server's default model decides.
    gone = prefs.imagine_options(ImagineOptions(prompt="x"), Defaults(model="removed-model"))
    assert gone.model is None


async def test_member_defaults_sit_over_the_servers_and_stay_in_their_guild(prefs: Preferences) -> None:
    await prefs.set_server(GUILD, {"model": "tiny-sdxl", "aspect": "16:9", "private": True}, by=ADMIN)
    await prefs.set_member(MEMBER, GUILD, {"aspect": "3:4"})
    here = await prefs.effective(MEMBER, GUILD)
    assert (here.model, here.aspect, here.private) == ("tiny-sdxl", "3:4", True)
    # The member's defaults follow them; the server's stay in their server.
    elsewhere = await prefs.effective(MEMBER, OTHER_GUILD)
    assert (elsewhere.model, elsewhere.aspect, elsewhere.private) == (None, "3:4", None)
    assert await prefs.effective(MEMBER, None) == elsewhere  # DMs: no server layer
    # An explicit "off" of the member's beats the server's "on".
    await prefs.set_member(MEMBER, GUILD, {"private": False})
    assert await prefs.private(MEMBER, GUILD) is False
    await prefs.reset_member(MEMBER, "private")
    assert await prefs.private(MEMBER, GUILD) is True


async def test_remix_is_stored_per_member(prefs: Preferences) -> None:
    assert await prefs.remix(MEMBER, GUILD) is False
    await prefs.set_member(MEMBER, GUILD, {"remix": True})
    assert await prefs.remix(MEMBER, GUILD) is True
    assert await prefs.remix(MEMBER, OTHER_GUILD) is True
    assert await prefs.remix(MEMBER + 1, GUILD) is False
    await prefs.set_member(MEMBER, GUILD, {"remix": False})
    assert await prefs.remix(MEMBER, None) is False


async def test_reset_clears_one_or_all_and_leaves_no_empty_row(prefs: Preferences) -> None:
    await prefs.set_member(MEMBER, GUILD, {"model": "tiny-sdxl", "negative": "  blurry  ", "steps": 20})
    assert (await prefs.member(MEMBER)).negative == "blurry"  # trimmed
    assert (await prefs.reset_member(MEMBER, "steps")) == Defaults(model="tiny-sdxl", negative="blurry")
    assert (await prefs.reset_member(MEMBER)) == Defaults()
    async with prefs.sessions() as session:
        from sqlalchemy import func, select

        from db.models_preferences import MemberPreferences
        assert await session.scalar(select(func.count()).select_from(MemberPreferences)) == 0


@pytest.mark.parametrize(("changes", "needle"), [
    ({"model": "no-such-model"}, "Unknown model 'no-such-model'; choose one of: tiny-sd15"),
    ({"model": "tiny-svd"}, "Unknown model 'tiny-svd'"),  # a video model is not an /imagine model
    ({"steps": 80}, "Steps must be 1-50 for tiny-sd15; you asked for 80."),
    ({"model": "tiny-sdxl-lightning", "steps": 20}, "Steps must be 1-8 for tiny-sdxl-lightning; you asked for 20."),
    ({"steps": 0}, "Steps must be at least 1"),
    ({"aspect": "5:4"}, "Unknown aspect '5:4'"),
    ({"negative": "x" * 1001}, "The negative prompt is 1001 characters; the limit is 1000."),
    ({"colour": "red"}, "There is no default called 'colour'"),
])
async def test_bad_values_are_refused_like_imagines_options(prefs: Preferences, changes: dict, needle: str) -> None:
    with pytest.raises(InvalidOption) as refused:
        await prefs.set_member(MEMBER, GUILD, changes)
    assert needle in refused.value.message
    assert await prefs.member(MEMBER) == Defaults()  # nothing stored


async def test_a_model_change_that_strands_the_stored_steps_says_so(prefs: Preferences) -> None:
    await prefs.set_member(MEMBER, GUILD, {"steps": 30})
    with pytest.raises(InvalidOption) as refused:
        await prefs.set_member(MEMBER, GUILD, {"model": "tiny-sdxl-lightning"})
    assert "Steps must be 1-8 for tiny-sdxl-lightning; you asked for 30 (your default steps are 30" in \
        refused.value.message
    # Steps are checked against the server's default model when the member names none.
    await prefs.set_server(GUILD, {"model": "tiny-sdxl-turbo"}, by=ADMIN)
    with pytest.raises(InvalidOption, match="Steps must be 1-4 for tiny-sdxl-turbo"):
        await prefs.set_member(MEMBER, GUILD, {"steps": 6})


async def test_servers_never_see_each_others_defaults(prefs: Preferences) -> None:
    await prefs.set_server(GUILD, {"negative": "watermark", "steps": 10}, by=ADMIN)
    assert await prefs.server(OTHER_GUILD) == Defaults()
    await prefs.reset_server(OTHER_GUILD, by=ADMIN)
    assert await prefs.server(GUILD) == Defaults(negative="watermark", steps=10)
    with pytest.raises(InvalidOption, match="no default called 'remix'"):
        await prefs.set_server(GUILD, {"remix": True}, by=ADMIN)
