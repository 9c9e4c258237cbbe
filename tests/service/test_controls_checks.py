"""The /imagine checks for styles, samplers, wildcards and embeddings, and the pure modules behind them."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import InvalidOption
from bot.params import styles, wildcards
from bot.params.styles import Style
from bot.services.imagine_checks import reresolve
from bot.services.jobs import ImagineOptions, JobService
from inference.models import ModelRegistry
from tests.embedding_files import tiny_embeddings  # noqa: F401  (fixture)


@pytest.fixture
def service(tiny_models: Path) -> JobService:
    return JobService(None, ModelRegistry.load(tiny_models))  # type: ignore[arg-type]  # prepare_imagine reads no database


@pytest.fixture
def wildcard_dir(tmp_path: Path) -> Path:
    (tmp_path / "animals").mkdir()
    (tmp_path / "colors.txt").write_text("# a comment\nred\nblue\ngreen\n", encoding="utf-8")
    (tmp_path / "animals" / "cats.txt").write_text("tabby\nsiamese\n", encoding="utf-8")
    return tmp_path


# ----- styles -----


def test_the_style_file_has_the_styles_members_ask_for() -> None:
    packaged = styles.builtin()
    assert len(packaged) >= 30
    for name in ("photographic", "cinematic", "anime", "watercolor", "line-art", "pixel-art", "3d-render", "isometric"):
        assert name in packaged
    for style in packaged.values():
        assert style.prompt.count("{prompt}") == 1 and style.negative, style.name


def test_a_style_wraps_the_prompt_and_adds_its_negative() -> None:
    style = Style("x", "ink drawing of {prompt}, sketchy", "color")
    assert style.apply("a cat", "blurry") == ("ink drawing of a cat, sketchy", "blurry, color")
    assert style.apply("a cat", "") == ("ink drawing of a cat, sketchy", "color")
    # A template without {prompt} follows the prompt, as in A1111.
    assert Style("y", "film grain").apply("a cat", "") == ("a cat, film grain", "")
    assert styles.find("Pixel Art").name == "pixel-art"
    assert styles.search("pix") == ["pixel-art"]
    mine = {"pix-house": Style("pix-house", "{prompt}")}
    assert styles.search("pix", mine) == ["pix-house", "pixel-art"]
    with pytest.raises(InvalidOption, match="Unknown style 'pix-house'"):
        styles.find("pix-house")


@pytest.mark.parametrize(("name", "prompt", "needle"), [
    ("a b c!", "{prompt}", "letters, digits and dashes"),
    ("anime", "{prompt}", "one of the bot's own styles"),
    ("mine", "{prompt}", "already has a style 'mine'"),
    ("new", " ", "The style's prompt is empty"),
    ("new", "{prompt} {prompt}", "once"),
    ("new", "x" * 501, "at most 500 characters and its negative 500"),
])
def test_a_servers_new_style_is_checked(name: str, prompt: str, needle: str) -> None:
    with pytest.raises(InvalidOption, match=needle):
        styles.check_new(name, prompt, "", ["mine"])


def test_imagine_applies_a_style(service: JobService) -> None:
    params = service.prepare_imagine(ImagineOptions(prompt="a cat", negative="text", style="watercolor", seed=1))
    assert params["prompt"].startswith("watercolor painting of a cat, ")
    assert params["negative_prompt"].startswith("text, anime, photorealistic")
    assert params["style"] == "watercolor" and "prompt_template" not in params
    server = {"ours": Style("ours", "{prompt} in our colours", "grey")}
    ours = service.prepare_imagine(ImagineOptions(prompt="a cat", style="ours", server_styles=server, seed=1))
    assert (ours["prompt"], ours["negative_prompt"]) == ("a cat in our colours", "grey")


# ----- samplers -----


def test_imagine_takes_a1111_sampler_names(service: JobService) -> None:
    assert service.prepare_imagine(ImagineOptions(prompt="a cat", sampler="DPM++ SDE Karras"))["scheduler"] == \
        "dpmpp-sde-karras"
    assert service.prepare_imagine(ImagineOptions(prompt="a cat", model="tiny-sdxl-lightning",
                                                  sampler="Euler"))["scheduler"] == "euler-trailing"
    with pytest.raises(InvalidOption, match="Unknown sampler 'Euler z'"):
        service.prepare_imagine(ImagineOptions(prompt="a cat", sampler="Euler z"))
    with pytest.raises(InvalidOption, match="LCM only works"):
        service.prepare_imagine(ImagineOptions(prompt="a cat", sampler="LCM"))


# ----- wildcards -----


def test_the_seed_picks_the_variant(wildcard_dir: Path) -> None:
    template = "a {small|big|huge} __colors__ __animals/cats__ cat"
    picks = {wildcards.resolve(template, seed, wildcard_dir) for seed in range(40)}
    assert len(picks) > 3
    for pick in picks:
        size, color, breed = pick.split()[1:4]
        assert size in {"small", "big", "huge"} and color in {"red", "blue", "green"} and breed in {"tabby", "siamese"}
    assert all(wildcards.resolve(template, seed, wildcard_dir) == wildcards.resolve(template, seed, wildcard_dir)
               for seed in range(10))
    assert wildcards.resolve("a plain (cat:1.2) [dog]", 3, None) == "a plain (cat:1.2) [dog]"


@pytest.mark.parametrize(("template", "folder", "needle"), [
    ("a __colors__ cat", False, "wildcards are not available on this bot"),
    ("a __nope__ cat", True, "There is no wildcard `__nope__`"),
    ("a {red|blue cat", True, "variants do not parse"),
    ("{|}", True, "picked an empty prompt"),
])
def test_bad_templates_are_refused(wildcard_dir: Path, template: str, folder: bool, needle: str) -> None:
    with pytest.raises(InvalidOption, match=needle):
        wildcards.resolve(template, 1, wildcard_dir if folder else None)


def test_the_template_stays_for_rerolls(service: JobService, wildcard_dir: Path) -> None:
    params = service.prepare_imagine(ImagineOptions(prompt="a {small|big} cat", style="anime", seed=5,
                                                    wildcards_dir=wildcard_dir))
    assert params["prompt_template"].startswith("anime artwork of a {small|big} cat")
    assert params["prompt"] == wildcards.resolve(params["prompt_template"], 5, wildcard_dir)
    for seed in range(20):
        again = reresolve({**params, "seed": seed}, wildcard_dir, None)
        assert again["prompt"] == wildcards.resolve(params["prompt_template"], seed, wildcard_dir)


def test_a_prompt_grown_past_the_limit_by_its_wildcards_is_refused(service: JobService, tmp_path: Path) -> None:
    (tmp_path / "long.txt").write_text("word " * 600 + "\n", encoding="utf-8")
    with pytest.raises(InvalidOption, match="With its wildcards and style the prompt is"):
        service.prepare_imagine(ImagineOptions(prompt="__long__ and __long__", wildcards_dir=tmp_path))


# ----- embeddings -----


def test_embeddings_are_found_by_name_and_checked(service: JobService, tiny_embeddings: Path) -> None:  # noqa: F811
    params = service.prepare_imagine(ImagineOptions(prompt="a cat, sd15-three", negative="sd15-one",
                                                    embeddings_dir=tiny_embeddings))
    assert params["embeddings"] == ["sd15-one", "sd15-three"]
    assert "embeddings" not in service.prepare_imagine(ImagineOptions(prompt="sd15-one", seed=1))  # folder off
    sdxl = service.prepare_imagine(ImagineOptions(prompt="a cat", negative="sdxl-neg", model="tiny-sdxl",
                                                  embeddings_dir=tiny_embeddings))
    assert sdxl["embeddings"] == ["sdxl-neg"]
    with pytest.raises(InvalidOption, match=r"made for SD 1\.5 models and tiny-sdxl is SDXL"):
        service.prepare_imagine(ImagineOptions(prompt="sd15-three", model="tiny-sdxl", embeddings_dir=tiny_embeddings))
