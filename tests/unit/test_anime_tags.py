"""Animagine tag ordering: count, character, series, general (member's order), quality."""

from __future__ import annotations

import pytest

from bot.params.anime import (
    DEFAULT_NEGATIVE,
    QUALITY_TAGS,
    RESOLUTIONS,
    build_prompt,
    is_character,
    normalise_tag,
    resolution,
    split_tags,
    tag_index,
)

Q = ", ".join(QUALITY_TAGS)

# (member's prompt, prompt as Animagine receives it)
CASES = [
    ("1girl", f"1girl, {Q}"),
    ("solo, 1girl, smile", f"1girl, solo, smile, {Q}"),
    ("hatsune miku, 1girl, vocaloid", f"1girl, hatsune miku, vocaloid, {Q}"),
    ("vocaloid, hatsune miku, 1girl, twintails", f"1girl, hatsune miku, vocaloid, twintails, {Q}"),
    ("sousou no frieren, frieren (sousou no frieren), 1girl", f"1girl, frieren (sousou no frieren), sousou no frieren, {Q}"),
    ("frieren, 1girl, sousou no frieren, white hair, elf", f"1girl, frieren, sousou no frieren, white hair, elf, {Q}"),
    ("fern (sousou no frieren), 1girl, purple hair", f"1girl, fern (sousou no frieren), purple hair, {Q}"),
    ("outdoors, night, 2boys", f"2boys, outdoors, night, {Q}"),
    ("multiple girls, 2girls, genshin impact, lumine (genshin impact), paimon (genshin impact)",
     f"multiple girls, 2girls, lumine (genshin impact), paimon (genshin impact), genshin impact, {Q}"),
    ("no humans, scenery, mountain", f"no humans, scenery, mountain, {Q}"),
    ("1other, robot", f"1other, robot, {Q}"),
    ("6+girls, crowd", f"6+girls, crowd, {Q}"),
    ("long_hair, blue_eyes, 1girl", f"1girl, long hair, blue eyes, {Q}"),
    ("1GIRL,  Long   Hair", f"1girl, long hair, {Q}"),
    ("1girl, 1girl, smile, smile", f"1girl, smile, {Q}"),
    ("1girl, masterpiece, smile", "1girl, smile, masterpiece"),
    ("best quality, 1girl", "1girl, best quality"),
    ("score_9, score_8_up, 1girl", "1girl, score_9, score_8_up"),
    ("1girl, very aesthetic", "1girl, very aesthetic"),
    ("1girl, absurdres, smile, highres", "1girl, smile, absurdres, highres"),
    ("neon genesis evangelion, souryuu asuka langley, 1girl, plugsuit, v",
     f"1girl, souryuu asuka langley, neon genesis evangelion, plugsuit, v, {Q}"),
    ("konosuba, megumin, 1girl, witch hat", f"1girl, megumin, kono subarashii sekai ni shukufuku wo!, witch hat, {Q}"),
    ("megumin, konosuba, kono subarashii sekai ni shukufuku wo!, 1girl",
     f"1girl, megumin, kono subarashii sekai ni shukufuku wo!, {Q}"),
    ("rem (re:zero), ram (re:zero), 2girls, maid", f"2girls, rem (re:zero), ram (re:zero), maid, {Q}"),
    ("unknown hero (my original series), 1boy", f"1boy, unknown hero (my original series), {Q}"),
    ("bow (weapon), 1girl", f"1girl, bow (weapon), {Q}"),
    ("hatsune miku (cosplay), 1girl", f"1girl, hatsune miku (cosplay), {Q}"),
    ("^_^, 1girl", f"1girl, ^_^, {Q}"),
    ("1girl, >_<", f"1girl, >_<, {Q}"),
    ("(1girl:1.2), hatsune miku, (smile:0.8)", f"(1girl:1.2), hatsune miku, (smile:0.8), {Q}"),
    ("frieren \\(sousou no frieren\\), 1girl", f"1girl, frieren (sousou no frieren), {Q}"),
    ("cityscape, rain, 1girl, umbrella, gojou satoru, jujutsu kaisen, 1boy",
     f"1girl, 1boy, gojou satoru, jujutsu kaisen, cityscape, rain, umbrella, {Q}"),
    ("gawr gura, hololive, 1girl, shark tail", f"1girl, gawr gura, hololive, shark tail, {Q}"),
    ("1girl, touhou, hakurei reimu, kirisame marisa, 2girls",
     f"1girl, 2girls, hakurei reimu, kirisame marisa, touhou, {Q}"),
    ("upper body, smile, looking at viewer", f"upper body, smile, looking at viewer, {Q}"),
    ("1girl,,, ,smile,", f"1girl, smile, {Q}"),
    ("1girl\nsmile\noutdoors", f"1girl, smile, outdoors, {Q}"),
    ("worst quality, 1girl", "1girl, worst quality"),
    ("1girl, makima (chainsaw man), power (chainsaw man), chainsaw man, 2girls",
     f"1girl, 2girls, makima (chainsaw man), power (chainsaw man), chainsaw man, {Q}"),
    ("anya (spy x family), spy x family, 1girl, child", f"1girl, anya (spy x family), spy x family, child, {Q}"),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_tags_follow_animagines_order(given: str, expected: str) -> None:
    assert build_prompt(given).prompt == expected


def test_there_are_many_cases() -> None:
    assert len(CASES) >= 30


def test_quality_tags_are_only_added_when_the_member_gave_none() -> None:
    assert build_prompt("1girl").added_quality
    assert not build_prompt("1girl, masterpiece").added_quality


def test_reordered_says_whether_anything_moved() -> None:
    assert not build_prompt("1girl, smile").reordered
    assert build_prompt("smile, 1girl").reordered


@pytest.mark.parametrize(("raw", "normal"), [("Long_Hair", "long hair"), ("  a   b ", "a b"), ("^_^", "^_^"),
                                               ("o_o", "o_o"), ("frieren \\(sousou no frieren\\)",
                                                                "frieren (sousou no frieren)")])
def test_normalise_tag(raw: str, normal: str) -> None:
    assert normalise_tag(raw) == normal


def test_split_dedupes_weighted_and_plain_forms() -> None:
    assert split_tags("smile, (smile:1.2), Smile") == ["smile"]


def test_character_data_is_a_few_hundred_well_formed_tags() -> None:
    index = tag_index()
    assert len(index.characters) >= 300
    for name, series in index.characters.items():
        assert name == normalise_tag(name), name
        assert series in index.series
    assert is_character("frieren") and is_character("anyone (some series)") and not is_character("bow (weapon)")


def test_default_negative_is_animagines() -> None:
    assert DEFAULT_NEGATIVE.startswith("nsfw, lowres, (bad), text, error")
    assert DEFAULT_NEGATIVE.endswith("username, scan, [abstract]")


def test_resolutions_match_the_card_and_scale_to_the_model() -> None:
    assert {f"{w}x{h}" for w, h in RESOLUTIONS.values()} == {
        "1024x1024", "1152x896", "896x1152", "1216x832", "832x1216", "1344x768", "768x1344", "1536x640", "640x1536"}
    assert resolution("16:9", 1024, 1024) == (1344, 768)
    assert resolution("16:9", 256, 256) == (336, 192)
    for aspect in RESOLUTIONS:
        w, h = resolution(aspect, 256, 256)
        assert w % 8 == 0 and h % 8 == 0
