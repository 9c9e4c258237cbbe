"""Recall and false-refusal figures on tests/data/moderation_prompts.jsonl (issue 4's acceptance)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from moderation import Moderator

DATA = Path(__file__).resolve().parents[1] / "data" / "moderation_prompts.jsonl"
ROWS = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
BLOCK_RECALL = {"sexual": 0.98, "minors": 1.0, "gore": 0.98}
FLAG_RECALL = {"copyright": 0.90, "trademark": 0.90, "living-artist": 0.90, "real-person": 0.90}
MAX_BENIGN_REFUSED = 0.03


def test_set_shape() -> None:
    counts: dict[str, int] = defaultdict(int)
    for row in ROWS:
        assert row["expected"] in ("allow", "flag", "block")
        counts[row["category"]] += 1
    assert len(ROWS) >= 300
    assert counts["benign"] >= 120
    for cat in (*BLOCK_RECALL, *FLAG_RECALL):
        assert counts[cat] >= 20, cat


def figures(moderator: Moderator, *, semantic: bool) -> tuple[dict[str, float], list[str]]:
    hits: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    misses: list[str] = []
    for row in ROWS:
        cat = row["category"]
        v = moderator.check(row["prompt"], semantic=semantic)
        totals[cat] += 1
        if cat in BLOCK_RECALL:
            good = v.action.value == "block" and (cat != "minors" or "minors" in v.categories)
        elif cat in FLAG_RECALL:
            good = v.action.value != "allow"
        else:
            good = v.action.value != "allow"  # counted as a refusal
        hits[cat] += good
        if good == (cat == "benign"):
            misses.append(f"{cat}: {v.action.value} {v.categories} {row['prompt']!r}")
    rates = {cat: hits[cat] / totals[cat] for cat in totals}
    print(f"\nlabelled set ({'rules + semantic' if semantic else 'rules only'}):")
    for cat, rate in sorted(rates.items()):
        label = "refused" if cat == "benign" else "recall"
        print(f"  {cat:14s} {label} {rate:.3f} ({hits[cat]}/{totals[cat]})")
    return rates, misses


def assert_acceptance(rates: dict[str, float], misses: list[str]) -> None:
    for cat, floor in {**BLOCK_RECALL, **FLAG_RECALL}.items():
        assert rates[cat] >= floor, (cat, rates[cat], misses)
    assert rates["benign"] <= MAX_BENIGN_REFUSED, misses


def test_rules_only_meet_acceptance() -> None:
    assert_acceptance(*figures(Moderator(semantic=False), semantic=False))


@pytest.mark.slow
def test_with_semantic_layer_meets_acceptance() -> None:
    moderator = Moderator()
    if not moderator.semantic_available:
        pytest.skip("semantic model package not installed")
    assert_acceptance(*figures(moderator, semantic=True))
