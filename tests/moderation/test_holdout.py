"""Acceptance figures on tests/data/moderation_holdout.jsonl, a set written apart from the lists.

The labelled set (moderation_prompts.jsonl) was written together with the lists, so it flatters them.
The holdout set was written first and independently, the way Discord users type prompts (SD tag
style, "by X", obfuscations), with benign prompts meant to trip naive filters. Labelling choices that
the policy leaves open, made once and kept consistent:

- A famous public-domain artwork named as such ("Venus de Milo", "The Birth of Venus") is allowed;
  asking for nudity in words ("nude figure drawing") is sexual and blocked in ordinary channels,
  whatever the art framing, because the output is a nude image.
- Historical figures dead for generations (Napoleon, Lincoln, Jack the Ripper) and public-domain
  characters (Sherlock Holmes, Dracula, Alice, Robin Hood, mythological Thor) are allowed.
- A real person combined with nudity counts as sexual (blocked either way).
- Any sexual term next to any minor signal ("naked baby", "teen nude") is minors.

Run ``pytest tests/moderation/test_holdout.py -s`` to see per-category figures and the misses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from moderation import Moderator
from tests.moderation.test_labelled_set import BLOCK_RECALL, FLAG_RECALL, MAX_BENIGN_REFUSED

DATA = Path(__file__).resolve().parents[1] / "data" / "moderation_holdout.jsonl"
# A second, smaller set written after the first round of fixes, to see whether they generalised.
PROBE = DATA.with_name("moderation_probe.jsonl")


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


ROWS = load(DATA)


def test_holdout_shape() -> None:
    counts: dict[str, int] = {}
    for row in ROWS:
        assert row["expected"] in ("allow", "flag", "block")
        assert row["expected"] == {"benign": "allow"}.get(
            row["category"], "block" if row["category"] in BLOCK_RECALL else "flag")
        counts[row["category"]] = counts.get(row["category"], 0) + 1
    assert len(ROWS) >= 300
    assert counts["benign"] >= 130
    for cat in (*BLOCK_RECALL, *FLAG_RECALL):
        assert counts.get(cat, 0) >= 20, cat
    prompts = [r["prompt"] for r in ROWS]
    assert len(prompts) == len(set(prompts)), "duplicate prompts"


def figures(moderator: Moderator, *, semantic: bool, rows: list[dict[str, str]] | None = None,
            name: str = "holdout") -> tuple[dict[str, float], list[str]]:
    hits: dict[str, int] = {}
    totals: dict[str, int] = {}
    misses: list[str] = []
    for row in ROWS if rows is None else rows:
        cat = row["category"]
        v = moderator.check(row["prompt"], semantic=semantic)
        if cat in BLOCK_RECALL:
            good = v.action.value == "block" and (cat != "minors" or "minors" in v.categories)
        else:  # flag categories: warn or block; benign: counted as refused when not allowed
            good = v.action.value != "allow"
        totals[cat] = totals.get(cat, 0) + 1
        hits[cat] = hits.get(cat, 0) + good
        if good == (cat == "benign"):
            misses.append(f"{cat}: {v.action.value} {v.categories} {v.matched} {row['prompt']!r}")
    rates = {cat: hits[cat] / totals[cat] for cat in totals}
    print(f"\n{name} set ({'rules + semantic' if semantic else 'rules only'}):")
    for cat, rate in sorted(rates.items()):
        label = "refused" if cat == "benign" else "recall"
        print(f"  {cat:14s} {label} {rate:.3f} ({hits[cat]}/{totals[cat]})")
    print(f"  misses ({len(misses)}):")
    for miss in misses:
        print("   ", miss)
    return rates, misses


def assert_acceptance(rates: dict[str, float], misses: list[str]) -> None:
    for cat, floor in {**BLOCK_RECALL, **FLAG_RECALL}.items():
        assert rates[cat] >= floor, (cat, rates[cat], misses)
    assert rates["benign"] <= MAX_BENIGN_REFUSED, misses


def test_holdout_rules_only_meet_acceptance() -> None:
    assert_acceptance(*figures(Moderator(semantic=False), semantic=False))


def test_probe_rules_only_meet_acceptance() -> None:
    rates, misses = figures(Moderator(semantic=False), semantic=False, rows=load(PROBE), name="probe")
    assert_acceptance(rates, misses)


@pytest.mark.slow
def test_holdout_with_semantic_layer_meets_acceptance() -> None:
    moderator = Moderator()
    if not moderator.semantic_available:
        pytest.skip("semantic model package not installed")
    assert_acceptance(*figures(moderator, semantic=True))
