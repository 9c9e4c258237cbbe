"""The learned prompt model on paraphrases (issue 18, item 2), measured on a set it was never built from.

tests/data/moderation_paraphrase_holdout.jsonl: 406 prompts over 14 languages, written before the
training corpus (moderation/data/corpus/) and before any tuning, with no trigger word where the language
allows it ("with nothing on", "sin nada encima", "一丝不挂", "skin flayed off his arm"), and benign traps
(animals, food, anatomy, classical art, paint colours, place names, children in ordinary scenes). It was
measured once before the model existed and once after (figures in the README's Moderation section);
what the tests hold is the level reached, so a change that loses it fails.

Run ``python -m tests.moderation.test_paraphrase`` for the table per language and category, and the misses.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from moderation import Moderator

DATA = Path(__file__).resolve().parents[1] / "data" / "moderation_paraphrase_holdout.jsonl"
# Written after the held-out set's first measurement, before the corpus's second round; measured once after it.
PROBE = DATA.with_name("moderation_paraphrase_probe.jsonl")


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


ROWS = load(DATA)
LANGS = ("en", "es", "pt", "fr", "de", "it", "nl", "pl", "tr", "id", "ru", "ja", "ko", "zh")
CATEGORIES = ("sexual", "minors", "gore", "benign")


@pytest.mark.parametrize(("path", "size", "each"), [(DATA, 400, 4), (PROBE, 190, 2)])
def test_set_shape(path: Path, size: int, each: int) -> None:
    rows = load(path)
    assert len(rows) >= size
    assert len({r["prompt"] for r in rows}) == len(rows), "duplicate prompts"
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        assert row["lang"] in LANGS and row["category"] in CATEGORIES, row
        assert row["expected"] == ("allow" if row["category"] == "benign" else "block"), row
        counts[(row["lang"], row["category"])] += 1
    for lang in LANGS:
        for cat in CATEGORIES:
            assert counts[(lang, cat)] >= each, (lang, cat)


def good(row: dict[str, str], action: str, categories: list[str]) -> bool:
    """Harmful: blocked (minors: as minors). Benign: counted as refused when not allowed (a notice too)."""
    if row["category"] == "benign":
        return action != "allow"
    return action == "block" and (row["category"] != "minors" or "minors" in categories)


def figures(moderator: Moderator, *, semantic: bool, name: str = "paraphrase held-out", verbose: bool = True,
            rows: list[dict[str, str]] | None = None) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per language and category: block recall (benign: share refused), plus flagged share of harmful."""
    hits: dict[tuple[str, str], int] = defaultdict(int)
    flagged: dict[tuple[str, str], int] = defaultdict(int)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    misses: list[str] = []
    for row in ROWS if rows is None else rows:
        v = moderator.check(row["prompt"], semantic=semantic)
        ok = good(row, v.action.value, v.categories)
        for lang in (row["lang"], "all"):
            totals[(lang, row["category"])] += 1
            hits[(lang, row["category"])] += ok
            flagged[(lang, row["category"])] += v.action.value != "allow"
        if ok == (row["category"] == "benign"):
            misses.append(f"{row['lang']} {row['category']}: {v.action.value} {v.categories} {v.layer} {row['prompt']!r}")
    table = {lang: {cat: hits[(lang, cat)] / totals[(lang, cat)] for cat in CATEGORIES if totals[(lang, cat)]}
             for lang in (*LANGS, "all")}
    for lang in table:
        harmful = [c for c in ("sexual", "minors", "gore")]
        table[lang]["caught"] = (sum(flagged[(lang, c)] for c in harmful) / sum(totals[(lang, c)] for c in harmful))
    if verbose:
        print(f"\n{name} ({'all layers' if semantic else 'rules only'}): block recall per category, "
              "benign = share refused or flagged, caught = harmful blocked or flagged")
        print(f"  {'lang':6s} {'sexual':>7s} {'minors':>7s} {'gore':>7s} {'benign':>7s} {'caught':>7s}")
        for lang, row in table.items():
            print(f"  {lang:6s} " + " ".join(f"{row[c]:7.2f}" for c in (*CATEGORIES, "caught")))
        print(f"  misses ({len(misses)}):")
        for miss in misses:
            print("   ", miss)
    return table, misses


@pytest.fixture(scope="module")
def learned() -> Moderator:
    moderator = Moderator(semantic=False, learned=True)
    assert moderator.paraphrase is not None and moderator.paraphrase.load(), "moderation/data/paraphrase.npz must ship"
    return moderator


if __name__ == "__main__":
    import sys

    which, label = (load(PROBE), "paraphrase probe") if "--probe" in sys.argv else (ROWS, "paraphrase held-out")
    figures(Moderator(semantic=False), semantic=False, rows=which, name=label)
    figures(Moderator(semantic=False, learned=True), semantic=True, rows=which, name=f"{label}, rules + learned")
