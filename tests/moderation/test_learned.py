"""The learned layer (issue 18, item 2): hashed character n-grams over words no list knows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation import Moderator
from moderation.learned import LearnedLayer, features, unknown_words

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def moderator() -> Moderator:
    m = Moderator(semantic=False, learned=True)
    assert m.learned is not None and m.learned.load(), "moderation/data/learned.npz must ship"
    return m


@pytest.mark.parametrize(("prompt", "category"), [
    ("spogliatissima sul divano", "sexual"),  # Italian superlative: no list spells it
    ("Nackedeis am See", "sexual"),  # German plural of a listed word
    ("голенькие девушки", "sexual"),  # Russian diminutive, Cyrillic
    ("zerstückelten Leichen im Keller", "gore"),  # German inflection
])
def test_inflections_no_list_spells_out(moderator: Moderator, prompt: str, category: str) -> None:
    assert moderator.check(prompt, semantic=False).action.value == "allow"  # the lists alone miss it
    v = moderator.check(prompt)
    assert v.action.value == "block" and v.categories == [category] and v.layer == "learned", v


def test_learned_sexual_signal_counts_for_the_minors_rule(moderator: Moderator) -> None:
    v = moderator.check("niña spogliatissima")
    assert v.categories[0] == "minors" and v.report


@pytest.mark.parametrize("name", ["moderation_prompts", "moderation_holdout", "moderation_probe",
                                  "moderation_multilingual", "moderation_multilingual_probe",
                                  "moderation_multilingual_probe3"])
def test_no_benign_prompt_refused_by_the_learned_layer(moderator: Moderator, name: str) -> None:
    rows = [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text("utf-8").splitlines() if line]
    refused = [r["prompt"] for r in rows if r["category"] == "benign"
               and moderator.check(r["prompt"]).layer == "learned"]
    assert refused == []


def test_only_unknown_words_are_scored(moderator: Moderator) -> None:
    assert unknown_words("a baby sleeping in a crib", moderator.known_words) == []
    assert [k for _, k in unknown_words("голенькие девушки", set())] == ["golenkie", "devushki"]
    assert features("ab") and features("ab") == features("AB")


def test_missing_weights_degrade_to_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("moderation.learned.MODEL_FILE", "no-such-file.npz")
    layer = LearnedLayer()
    assert not layer.available and not layer.load() and layer.check("desnudita", set()) == []
