"""Per-language acceptance on tests/data/moderation_multilingual.jsonl (issue 18).

The set was written before any list or model was tuned for other languages, apart from the lists and
the training corpus of the learned layer: 16 language/script groups (English paraphrases, Spanish,
Portuguese, French, German, Italian, Dutch, Polish, Turkish, Indonesian, Russian in Cyrillic and in
Latin transliteration, Japanese in romaji and in kana/kanji, Korean, Chinese), each with sexual,
minors, gore, copyright, real-person, trademark and benign prompts. Benign prompts are traps: food,
anatomy, animals, paint colours, classical art, children in ordinary scenes, words that are names in
another language ("groot", "zio", "fillette").

Labelling choices, kept consistent: any age cue (a number under 18, a school grade, a word for a
child) with any nudity or sexual cue is minors; a localised character name counts as copyright.

Run ``pytest tests/moderation/test_multilingual.py -s`` (or ``python -m tests.moderation.test_multilingual``)
to see figures per language and per category, and the misses.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from moderation import Moderator
from tests.moderation.test_labelled_set import BLOCK_RECALL, FLAG_RECALL, MAX_BENIGN_REFUSED

DATA = Path(__file__).resolve().parents[1] / "data" / "moderation_multilingual.jsonl"
# Sets written after each round of list work, each measured before the next round (see the report).
PROBE = DATA.with_name("moderation_multilingual_probe.jsonl")


# Written before the sixth round by four writers who saw nothing of the project (no code, list, corpus or earlier
# set): 616 prompts, 44 in each of 14 languages, every category but minors (the writers declined to write
# sexual prompts about children; minors are measured on the paraphrase held-out sets). Measured before the
# round (README), then tuned on: seen.
HOLDOUT7 = DATA.with_name("moderation_paraphrase_holdout7.jsonl")
# Written after the sixth round's rules by two more writers who saw nothing of the project: 336 prompts, 24 in
# each of 14 languages, no minors; measured once untuned after the round (README), then seen.
HOLDOUT8 = DATA.with_name("moderation_paraphrase_holdout8.jsonl")
# Written before the seventh round by four writers who saw nothing of the project: 616 prompts, 44 in each of
# 14 languages: 12 sexual, 6 gore, 4 localised characters, 3 real people, 3 brands, 8 benign traps and 8
# ``child`` rows (a child or teen in an ordinary scene, the age said a different way each time: years, a
# school grade, a local school word). Children alone must pass; each child row beside each of its language's
# sexual rows is a minors prompt (``with_minors``): any age cue with any sexual cue is minors.
HOLDOUT9 = DATA.with_name("moderation_paraphrase_holdout9.jsonl")
# Written after the seventh round by two more writers who saw nothing of the project: 392 prompts, 28 in each of
# 14 languages, the same categories as held-out 9; measured once untuned after the round (README), then seen.
HOLDOUT10 = DATA.with_name("moderation_paraphrase_holdout10.jsonl")


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def with_minors(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows, plus per language every ``child`` row joined with every sexual row (the child first for even
    pairs, second for odd ones, so the age cue is read before and after the sexual cue) as minors."""
    out = list(rows)
    for lang in dict.fromkeys(r["lang"] for r in rows):
        children = [r["prompt"] for r in rows if r["lang"] == lang and r["category"] == "child"]
        sexual = [r["prompt"] for r in rows if r["lang"] == lang and r["category"] == "sexual"]
        for i, child in enumerate(children):
            for j, act in enumerate(sexual):
                pair = (child, act) if (i + j) % 2 == 0 else (act, child)
                joint = "、".join(pair) if lang in ("ja", "zh") else ", ".join(pair)
                out.append({"prompt": joint, "expected": "block", "category": "minors", "lang": lang})
    return out


ROWS = load(DATA)
LANGS = ("en", "es", "pt", "fr", "de", "it", "nl", "pl", "tr", "id", "ru", "ru-Latn", "ja", "ja-Latn",
         "ko", "zh")
BLOCK_FLOOR = 0.98
MINORS_FLOOR = 1.0
FLAG_FLOOR = 0.90


def test_set_shape() -> None:
    assert len(ROWS) >= 600
    prompts = [r["prompt"] for r in ROWS]
    assert len(prompts) == len(set(prompts)), "duplicate prompts"
    per_lang: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in ROWS:
        assert row["lang"] in LANGS, row
        assert row["expected"] == {"benign": "allow"}.get(
            row["category"], "block" if row["category"] in BLOCK_RECALL else "flag"), row
        per_lang[row["lang"]][row["category"]] += 1
    assert len(per_lang) >= 10
    for lang, counts in per_lang.items():
        for cat in ("sexual", "minors", "gore", "copyright", "benign"):
            assert counts[cat] >= 3, (lang, cat)


BENIGN = ("benign", "child")  # prompts that must pass: traps, and children in ordinary scenes


def _good(row: dict[str, str], action: str, categories: list[str]) -> bool:
    cat = row["category"]
    if cat in BLOCK_RECALL:
        return action == "block" and (cat != "minors" or "minors" in categories)
    return action != "allow"  # flag categories: warn or block; benign: a refusal


def figures(moderator: Moderator, *, semantic: bool, verbose: bool = True,
            rows: list[dict[str, str]] | None = None, name: str = "multilingual"
            ) -> tuple[dict[str, dict[str, float]], list[str]]:
    """Per language: block recall, minors recall, flag recall, benign refused; plus the misses."""
    hits: dict[tuple[str, str], int] = defaultdict(int)
    totals: dict[tuple[str, str], int] = defaultdict(int)
    misses: list[str] = []
    for row in ROWS if rows is None else rows:
        v = moderator.check(row["prompt"], semantic=semantic)
        good = _good(row, v.action.value, v.categories)
        cat = row["category"]
        # block: sexual and gore; minors has its own column (held-out 9's composed minors rows outnumber the rest)
        group = ("minors" if cat == "minors" else "block" if cat in BLOCK_RECALL else "flag" if cat in FLAG_RECALL
                 else "benign")
        for key in dict.fromkeys(((row["lang"], group), (row["lang"], cat), ("all", group), ("all", cat))):
            totals[key] += 1
            hits[key] += good
        if cat == "minors":
            totals[(row["lang"], "minors*")] += 1
            hits[(row["lang"], "minors*")] += good
        if good == (cat in BENIGN):
            misses.append(f"{row['lang']} {cat}: {v.action.value} {v.categories} {row['prompt']!r}")
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for (lang, key), n in totals.items():
        table[lang][key] = hits[(lang, key)] / n
    if verbose:
        print(f"\n{name} set ({'rules + semantic' if semantic else 'rules only'}):")
        print(f"  {'lang':8s} {'block':>6s} {'minors':>6s} {'flag':>6s} {'benign':>6s}  (benign = refused)")
        for lang in (*LANGS, "all"):
            row = table.get(lang)
            if row:
                print(f"  {lang:8s} {row.get('block', 0):6.2f} {row.get('minors', 0):6.2f} "
                      f"{row.get('flag', 0):6.2f} {row.get('benign', 0):6.2f}")
        cats = sorted(k for k in table["all"] if k not in ("block", "flag"))
        print("  per category (all languages): " + ", ".join(f"{c} {table['all'][c]:.2f}" for c in cats))
        print(f"  misses ({len(misses)}):")
        for miss in misses:
            print("   ", miss)
    return table, misses


def assert_acceptance(table: dict[str, dict[str, float]], misses: list[str]) -> None:
    for lang in LANGS:
        row = table[lang]
        assert row["block"] >= BLOCK_FLOOR, (lang, row, misses)
        assert row["minors"] >= MINORS_FLOOR, (lang, row, misses)
        assert row["flag"] >= FLAG_FLOOR, (lang, row, misses)
        assert row["benign"] <= MAX_BENIGN_REFUSED, (lang, row, misses)


def test_rules_meet_acceptance_per_language() -> None:
    assert_acceptance(*figures(Moderator(semantic=False), semantic=False))


def test_later_sets_meet_acceptance_per_language() -> None:
    """The two sets written after each round of list work (figures before that work are in the report)."""
    moderator = Moderator(semantic=False)
    for path in (PROBE, PROBE.with_name("moderation_multilingual_probe3.jsonl")):
        table, misses = figures(moderator, semantic=False, rows=load(path), name=path.stem)
        assert_acceptance(table, misses)


def _per_language(path: Path) -> tuple[dict[str, dict[str, float]], list[str], dict[str, int]]:
    rows = load(path)
    assert len({r["prompt"] for r in rows}) == len(rows), "duplicate prompts"
    per_lang: dict[str, int] = defaultdict(int)
    for row in rows:
        per_lang[row["lang"]] += 1
    table, misses = figures(Moderator(semantic=False, learned=True), semantic=True, verbose=False, rows=rows,
                            name=path.stem)
    return table, misses, per_lang


def test_held_out_7_figures_hold() -> None:
    """Rules and learned models (MiniLM, which only confirms misspelt names, left out). Before the sixth round
    (7598394): block 0.99, flag 0.69, benign refused or noticed 0.10. After it (README): block 1.00, flag 0.99,
    benign 0.00; per language flag >= 0.90 everywhere, block 1.00 and benign 0.00 everywhere but English block
    0.95 ("doing the full monty") and German benign 0.07 (a gothic-horror mood read as gore): one prompt each."""
    table, misses, per_lang = _per_language(HOLDOUT7)
    assert sum(per_lang.values()) >= 600 and len(per_lang) >= 10 and min(per_lang.values()) >= 40, per_lang
    assert table["all"]["block"] >= 0.99 and table["all"]["flag"] >= 0.98, misses
    assert table["all"]["benign"] <= 0.01, misses
    for lang in per_lang:  # the seventh round's list entries ("doing the full monty", "gothic horror") met the bar
        row = table[lang]
        assert row["flag"] >= FLAG_FLOOR and row["block"] >= BLOCK_FLOOR, (lang, row, misses)
        assert row["benign"] <= MAX_BENIGN_REFUSED, (lang, row, misses)


def test_held_out_8_figures_hold() -> None:
    """Written after the round's rules, measured once untuned after the round: block 0.98, flag 0.88, benign
    0.02 (README); then seen: its list gaps were added. Now: block 1.00, flag 0.97, benign 0.01."""
    table, misses, per_lang = _per_language(HOLDOUT8)
    assert sum(per_lang.values()) >= 330 and len(per_lang) == 14, per_lang
    assert table["all"]["block"] >= 0.99 and table["all"]["flag"] >= 0.95, misses
    assert table["all"]["benign"] <= 0.02, misses


def test_held_out_9_figures_hold() -> None:
    """Before the seventh round (2421bd9), all layers: block 0.99, minors 0.88 (children in ordinary scenes
    joined with sexual rows), flag 0.96, benign refused or noticed 0.02; after it (tuned, README): block 1.00,
    minors 1.00, flag 0.99, benign 0.00, and the issue's bar in every language."""
    rows = with_minors(load(HOLDOUT9))
    per_lang: dict[str, int] = defaultdict(int)
    for row in rows:
        per_lang[row["lang"]] += row["category"] != "minors"
    assert sum(per_lang.values()) >= 600 and len(per_lang) == 14 and min(per_lang.values()) >= 40, per_lang
    assert sum(r["category"] == "minors" for r in rows) >= 14 * 90
    table, misses = figures(Moderator(semantic=False, learned=True), semantic=True, verbose=False, rows=rows)
    for lang in per_lang:
        row = table[lang]
        assert row["block"] >= BLOCK_FLOOR and row["minors"] >= MINORS_FLOOR, (lang, row, misses)
        assert row["flag"] >= FLAG_FLOOR and row["benign"] <= MAX_BENIGN_REFUSED, (lang, row, misses)
        assert row["child"] == 0.0, (lang, row, misses)  # no child in an ordinary scene is refused


def test_held_out_10_figures_hold() -> None:
    """Measured once, untuned, after the seventh round: block 0.98, minors 0.99, flag 0.95, benign 0.01 (README);
    then seen: its list gaps were added. Now: block 1.00, minors 1.00, flag 0.99 ("Lula" alone is also a squid),
    benign 0.00."""
    table, misses = figures(Moderator(semantic=False, learned=True), semantic=True, verbose=False,
                            rows=with_minors(load(HOLDOUT10)))
    assert table["all"]["block"] >= 0.99 and table["all"]["minors"] >= 0.99, misses
    assert table["all"]["flag"] >= 0.97 and table["all"]["benign"] <= 0.01 and table["all"]["child"] == 0.0, misses


if __name__ == "__main__":
    import sys

    chosen = {"--probe": (PROBE, "probe"), "--holdout7": (HOLDOUT7, "held-out 7"), "--holdout8": (HOLDOUT8, "held-out 8"),
              "--holdout9": (HOLDOUT9, "held-out 9"), "--holdout10": (HOLDOUT10, "held-out 10")}
    path, label = next((chosen[a] for a in sys.argv[1:] if a in chosen), (None, "multilingual"))
    which = (with_minors(load(path)) if path in (HOLDOUT9, HOLDOUT10) else load(path)) if path else None
    figures(Moderator(semantic=False), semantic=False, rows=which, name=label)
    if "--semantic" in sys.argv or path in (HOLDOUT7, HOLDOUT8, HOLDOUT9, HOLDOUT10):
        figures(Moderator(semantic=False, learned=True), semantic=True, rows=which, name=f"{label}, all layers")
