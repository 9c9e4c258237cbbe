"""Danbooru-tag prompts for Animagine XL: normalise the member's tags into the order it was trained on.

Animagine XL 3.1 was fine-tuned on captions written in one fixed order, and its card asks prompts
to follow it: subject count (``1girl``, ``2boys``, ``no humans``), then the character, then the
series, then everything else; quality tags (``masterpiece, best quality, very aesthetic,
absurdres``) close the prompt. Pure Python (no torch, no discord), no I/O after import: the command validates and
reorders before it defers, and the embed shows the prompt exactly as the model receives it.

Characters and series are recognised from ``bot/params/data/anime_tags.toml`` (a few hundred well-known
characters with their series) and from Danbooru's ``name (series)`` convention, so a character
missing from the file but written the Danbooru way (``fern (sousou no frieren)``) is still placed
as a character.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import InvalidOption
from bot.params.imagine import ImagineChecks, ImagineOptions

if TYPE_CHECKING:
    from inference.models import ModelRegistry, ModelSpec

QUALITY_TAGS = ("masterpiece", "best quality", "very aesthetic", "absurdres")
# Animagine XL 3.1's recommended negative prompt, verbatim from its model card.
DEFAULT_NEGATIVE = (
    "nsfw, lowres, (bad), text, error, fewer, extra, missing, worst quality, jpeg artifacts, low quality, "
    "watermark, unfinished, displeasing, oldest, early, chromatic aberration, signature, extra digits, "
    "artistic error, username, scan, [abstract]"
)

# Animagine's recommended resolutions (its card's table), keyed by the aspect shown to members.
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "9:7": (1152, 896),
    "7:9": (896, 1152),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "12:5": (1536, 640),
    "5:12": (640, 1536),
}
_NATIVE = 1024

# Tags Animagine (and other Danbooru-trained models) read as quality, aesthetic or score markers: a
# member who writes any of them has chosen their own, so none are appended.
_QUALITY = frozenset({
    "masterpiece", "best quality", "great quality", "high quality", "good quality", "normal quality",
    "low quality", "worst quality", "bad quality", "very aesthetic", "aesthetic", "displeasing",
    "very displeasing", "absurdres", "highres", "incredibly absurdres", "lowres",
})
_SCORE = re.compile(r"^score_\d+(_up)?$")
_COUNT = re.compile(r"^(?:\d+|6\+)(?:girl|boy|other)s?$")
_COUNT_WORDS = frozenset({"multiple girls", "multiple boys", "multiple others", "no humans"})
# Kaomoji whose underscores are part of the tag (Danbooru keeps them).
_KAOMOJI = frozenset({"^_^", ">_<", "o_o", "0_0", "x_x", "u_u", "=_=", "._.", "-_-", "^_^;", "t_t", ";_;"})
# Danbooru qualifiers that disambiguate general tags rather than name a character's series.
_GENERAL_QUALIFIERS = frozenset({
    "cosplay", "medium", "style", "meme", "object", "animal", "food", "flower", "plant", "weapon", "music",
    "hair", "clothing", "shape", "symbol", "artist", "emblem", "architecture", "instrument", "vehicle",
    "companion", "creature", "phrase", "organization", "game", "emoji", "concept", "company", "breed",
})
_WEIGHTED = re.compile(r"^\((?P<inner>.+):(?P<weight>-?\d+(?:\.\d+)?)\)$")
_QUALIFIED = re.compile(r"^(?P<name>.+?) \((?P<qualifier>[^()]+)\)$")
_DATA = Path(__file__).parent / "data" / "anime_tags.toml"


@dataclass(frozen=True, slots=True)
class AnimePrompt:
    """A prompt in Animagine's order, with what was done to the member's text."""

    prompt: str
    tags: tuple[str, ...]
    added_quality: bool
    # The member's tags, normalised, in their own order (to tell whether anything moved).
    original: tuple[str, ...]

    @property
    def reordered(self) -> bool:
        return self.tags[: len(self.original)] != self.original


@dataclass(frozen=True, slots=True)
class TagIndex:
    characters: dict[str, str]  # character tag -> series tag
    series: frozenset[str]
    aliases: dict[str, str]  # alias -> series tag


@cache
def tag_index(path: Path = _DATA) -> TagIndex:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    characters: dict[str, str] = {}
    for series, names in data.get("series", {}).items():
        for name in names:
            characters.setdefault(name, series)
    aliases = dict(data.get("aliases", {}))
    series = frozenset(data.get("series", {})) | frozenset(aliases.values())
    return TagIndex(characters=characters, series=series, aliases=aliases)


def normalise_tag(tag: str) -> str:
    """Lower case, underscores as spaces (kaomoji and score tags keep theirs), one space between words.

    Escaped parentheses (``\\(`` as A1111 users type them for Danbooru qualifiers) become plain.
    """
    text = " ".join(tag.strip().lower().split())
    if text in _KAOMOJI or _SCORE.match(text):  # score_9 keeps its underscores, as it was trained
        return text
    text = text.replace("\\(", "(").replace("\\)", ")").replace("_", " ")
    return " ".join(text.split())


def split_tags(prompt: str) -> list[str]:
    """Comma-separated tags, normalised, empty ones dropped, first occurrence of a duplicate kept."""
    seen: set[str] = set()
    tags: list[str] = []
    for raw in prompt.replace("\n", ",").split(","):
        tag = normalise_tag(raw)
        key = _core(tag)
        if tag and key not in seen:
            seen.add(key)
            tags.append(tag)
    return tags


def _core(tag: str) -> str:
    """The tag without an A1111 weight wrapper: ``(1girl:1.2)`` -> ``1girl``."""
    match = _WEIGHTED.match(tag)
    return match["inner"].strip() if match else tag


def is_quality(tag: str) -> bool:
    core = _core(tag)
    return core in _QUALITY or bool(_SCORE.match(core))


def is_count(tag: str) -> bool:
    core = _core(tag)
    return bool(_COUNT.match(core)) or core in _COUNT_WORDS


def is_series(tag: str, index: TagIndex | None = None) -> bool:
    index = index or tag_index()
    core = _core(tag)
    return core in index.series or core in index.aliases


def is_character(tag: str, index: TagIndex | None = None) -> bool:
    """Known characters, and Danbooru's ``name (series)`` convention for the rest."""
    index = index or tag_index()
    core = _core(tag)
    if core in index.characters:
        return True
    match = _QUALIFIED.match(core)
    if match is None:
        return False
    qualifier = match["qualifier"].strip()
    if qualifier in _GENERAL_QUALIFIERS:
        return False
    return True


def order_tags(tags: list[str], index: TagIndex | None = None) -> list[str]:
    """Count tags, characters, series, general tags (member's order), then quality tags (member's order)."""
    index = index or tag_index()
    counts: list[str] = []
    characters: list[str] = []
    series: list[str] = []
    general: list[str] = []
    quality: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        # The Danbooru series tag is what the model learnt ("konosuba" was never a caption).
        tag = index.aliases.get(tag, tag)
        if tag in seen:
            continue
        seen.add(tag)
        if is_count(tag):
            counts.append(tag)
        elif is_quality(tag):
            quality.append(tag)
        elif is_series(tag, index):
            series.append(tag)
        elif is_character(tag, index):
            characters.append(tag)
        else:
            general.append(tag)
    return counts + characters + series + general + quality


def build_prompt(text: str, index: TagIndex | None = None) -> AnimePrompt:
    """The member's prompt as Animagine expects it; quality tags appended unless they wrote their own."""
    tags = split_tags(text)
    ordered = order_tags(tags, index)
    added = not any(is_quality(tag) for tag in tags)
    if added:
        ordered += [tag for tag in QUALITY_TAGS if tag not in ordered]
    return AnimePrompt(prompt=", ".join(ordered), tags=tuple(ordered), added_quality=added, original=tuple(tags))


def resolution(aspect: str, native_width: int, native_height: int) -> tuple[int, int]:
    """Animagine's resolution for ``aspect`` scaled to a model's native size (1024 for the real one).

    Scaled sides are rounded to multiples of 8 (the VAE's factor); tiny test models at 256 px get
    the same shapes a quarter the size.
    """
    if aspect not in RESOLUTIONS:
        raise KeyError(aspect)
    width, height = RESOLUTIONS[aspect]
    scale = (native_width * native_height) ** 0.5 / _NATIVE
    return max(64, round(width * scale / 8) * 8), max(64, round(height * scale / 8) * 8)


def anime_models(registry: ModelRegistry) -> list[ModelSpec]:
    """Registry entries marked ``style = "anime"`` (Danbooru-tag models such as Animagine)."""
    return [spec for spec in registry.specs() if spec.extra.get("style") == "anime"]


def prepare(checks: ImagineChecks, *, prompt: str, negative: str | None, aspect: str | None, seed: int | None,
            count: int) -> dict[str, Any]:
    """/anime parameters: tags in Animagine's order, its negative and resolutions; options checked."""
    models = anime_models(checks.registry)
    if not models:
        raise InvalidOption("No anime model is installed on this bot; ask its admin to add Animagine XL to models.toml.")
    spec = models[0]
    if aspect is not None and aspect not in RESOLUTIONS:
        raise InvalidOption(f"Unknown aspect {aspect!r}; choose one of {', '.join(RESOLUTIONS)}.")
    built = build_prompt(prompt or "")
    if not built.original:
        raise InvalidOption("The prompt is empty: list Danbooru tags, e.g. `1girl, hatsune miku, vocaloid, smile`.")
    negative_text = DEFAULT_NEGATIVE if negative is None or not negative.strip() else negative
    params = checks.prepare_imagine(ImagineOptions(prompt=built.prompt, negative=negative_text, model=spec.name,
                                                    seed=seed, count=count))
    width, height = resolution(aspect or "1:1", spec.width, spec.height)
    params.update(width=width, height=height, aspect=aspect or "1:1",
                  anime={"input": prompt[:2000], "reordered": built.reordered, "added_quality": built.added_quality})
    return params
