"""Rebuild moderation/data/paraphrase.npz, the learned layer's prompt model (moderation/paraphrase.py).

Run: ``.venv/bin/python scripts/build_paraphrase_model.py`` (about a minute on one core). The corpus is
``moderation/data/corpus/<lang>.toml`` (hand-written fragments: sexual and gore paraphrases, benign
fragments, benign traps, negated phrases, plus each language's subjects and settings), each fragment
alone and inside carrier prompts; plus the lists' explicit terms (harmful) and allowlisted phrases,
names and ordinary words (benign). Never tests/data: those sets measure the layer. Deterministic: the
same data gives the same weights (seeded sampling, seeded SGD, one thread).

The lists' rows are read from a snapshot, ``moderation/data/corpus/lists.jsonl.gz``, not from the lists
themselves: adding a name or a child word to a list changes what the rules catch at once and leaves both
learned models as they are (before, every list change forced a rebuild, and every rebuild moved single
readings near the bar both ways). ``--refresh-lists`` takes the lists as they are now into the snapshot,
then trains: do it deliberately, and measure every labelled set before and after (the sentence model is
rebuilt from the same snapshot by scripts/build_sentence_model.py).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import random
import sys
import tomllib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moderation.paraphrase import BUCKETS, CLASSES, MODEL_FILE, features  # noqa: E402

log = logging.getLogger(__name__)

CORPUS = ROOT / "moderation" / "data" / "corpus"
LISTS_SNAPSHOT = CORPUS / "lists.jsonl.gz"
CARRIERS = ("{s} {f}", "{s} {f}, {p}", "{s} {p}, {f}", "{y}, {s} {f}, {p}", "{f}, {y}", "{s}, {f}, {y}, {z}",
            "{y}, {z}, {f}")
CJK_CARRIERS = ("{p}{f}{s}", "{s}、{f}、{p}", "{f}{s}、{y}", "{y}, {p}{f}{s}", "{f}")
VARIANTS = 6
ALPHA = 1e-6
CJK = {"ja", "zh"}


def _load(path: Path) -> dict:
    return tomllib.loads(path.read_text("utf-8"))


def _carriers(rng: random.Random, frag: str, lang: str, data: dict, styles: list[str], n: int) -> list[str]:
    templates = CJK_CARRIERS if lang in CJK else CARRIERS
    out = []
    for _ in range(n):
        out.append(rng.choice(templates).format(f=frag, s=rng.choice(data["subjects"]), p=rng.choice(data["settings"]),
                                                y=rng.choice(styles), z=rng.choice(styles)))
    return out


def language_corpus(rng: random.Random, lang: str, data: dict, styles: list[str]) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    for label in ("sexual", "gore"):
        for frag in data[label]:
            rows.append((frag, CLASSES.index(label)))
            rows += [(t, CLASSES.index(label)) for t in _carriers(rng, frag, lang, data, styles, VARIANTS)]
    # As many benign carrier prompts as harmful ones: the people, places and pronouns of the carriers must
    # not lean harmful because harmful fragments outnumber benign ones.
    harmful = len(data["sexual"]) + len(data["gore"])
    per_benign = max(VARIANTS, -(-harmful * VARIANTS // len(data["benign"])))
    for frag in data["benign"]:
        rows.append((frag, 0))
        rows += [(t, 0) for t in _carriers(rng, frag, lang, data, styles, per_benign)]
    for trap in data["traps"]:
        rows += [(trap, 0), (f"{trap}, {rng.choice(styles)}", 0), (f"{rng.choice(styles)}, {trap}, {rng.choice(styles)}", 0)]
        rows += [(f"{trap}, {rng.choice(data['settings'])}", 0), (f"{rng.choice(styles)}, {trap}", 0)]
    for neg in data["negated"]:
        for _ in range(VARIANTS):
            rows.append((f"{rng.choice(data['subjects'])} {rng.choice(data['benign'])}, {neg}", 0))
            rows.append((f"{rng.choice(data['subjects'])} {rng.choice(data['settings'])}, {neg}, {rng.choice(styles)}", 0))
    for _ in range(len(data["subjects"]) * 4):  # the people and places of every carrier, alone
        rows.append((f"{rng.choice(data['subjects'])} {rng.choice(data['settings'])}, {rng.choice(styles)}", 0))
    return rows


def list_corpus(rng: random.Random, styles: list[str], benign: dict[str, list[str]]) -> list[tuple[str, int]]:
    """The lists' explicit terms as harmful, and what the lists say is not explicit as benign: allowlisted
    phrases, names, body or injury words alone, and every word for a child doing
    something ordinary (a child alone is no sexual cue: the minors rule needs both)."""
    from moderation.fuzzy import known_words
    from moderation.languages import language_data
    from moderation.rules import _FILES, ADULT, EXPLICIT, SIGNAL, SUGGESTIVE, _load_file

    entries = [e for name in _FILES for e in _load_file(name)]
    entries += list(language_data().entries) + list(language_data().script)
    rows: list[tuple[str, int]] = []
    for e in entries:
        term = e.term.rstrip("*")
        if e.tier == EXPLICIT and e.category in ("sexual", "gore"):
            label = CLASSES.index(e.category)
        elif e.tier in (ADULT, SUGGESTIVE) or (e.tier == SIGNAL and "sexualised" in e.reason):
            continue  # suggestive words are neither harmless nor explicit: no label either way
        else:
            label = 0
        rows += [(term, label), (f"{rng.choice(styles)}, {term}", label)]
        if e.tier == SIGNAL:
            frags = benign.get(e.lang or "en", benign["en"])
            rows += [(f"{term} {rng.choice(frags)}", 0) for _ in range(3)]
    words = sorted(known_words())
    rng.shuffle(words)
    rows += [(w, 0) for w in words[:6000]]
    return rows


# Words for a person that say nothing of age, and adult ages: put in front of whole prompts of every label, so
# that neither model learns "girl" or "N years old" as a sign of harmlessness. The corpus's sexual prompts are
# about adults and never name a child, while its children are all in ordinary scenes: without this, an age cue
# would pull a sexual reading towards benign ("a 12 year old girl doing the deed"), exactly where the minors
# rule needs it.
PEOPLE = {
    "en": ["a girl", "a boy", "a young woman", "a 25 year old woman", "a 30 year old man", "two girls"],
    "es": ["una chica", "un chico", "una joven", "una mujer de 25 años", "un hombre de 30 años"],
    "pt": ["uma garota", "um garoto", "uma menina", "uma mulher de 25 anos", "um homem de 30 anos"],
    "fr": ["une fille", "un garçon", "une jeune femme", "une femme de 25 ans", "un homme de 30 ans"],
    "de": ["ein Mädchen", "ein Junge", "eine junge Frau", "eine 25-jährige Frau", "ein 30-jähriger Mann"],
    "it": ["una ragazza", "un ragazzo", "una giovane donna", "una donna di 25 anni", "un uomo di 30 anni"],
    "nl": ["een meisje", "een jongen", "een jonge vrouw", "een vrouw van 25 jaar", "een man van 30"],
    "pl": ["dziewczyna", "chłopak", "młoda kobieta", "25-letnia kobieta", "30-letni mężczyzna"],
    "tr": ["bir kız", "bir oğlan", "genç bir kadın", "25 yaşında bir kadın", "30 yaşında bir adam"],
    "id": ["seorang cewek", "seorang cowok", "gadis muda", "wanita umur 25 tahun", "pria berusia 30 tahun"],
    "ru": ["девушка", "парень", "девочка", "женщина 25 лет", "мужчина 30 лет"],
    "ja": ["女の子", "男の子", "若い女性", "25歳の女性", "30歳の男性"],
    "ko": ["여자애", "남자애", "젊은 여자", "25살 여자", "30살 남자"],
    "zh": ["女孩", "男孩", "年轻女子", "25岁的女人", "30岁的男人"],
}


def prompt_corpus(seed: int = 5) -> list[tuple[str, int]]:
    """Whole labelled prompts per language (data/corpus/prompts/<lang>.jsonl), each once as written and once
    after a person of no stated age or of an adult age (``PEOPLE``)."""
    import json

    rng = random.Random(seed)
    rows = []
    for path in sorted((CORPUS / "prompts").glob("*.jsonl")):
        people = PEOPLE.get(path.stem, PEOPLE["en"])
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["label"] not in CLASSES:
                raise ValueError(f"{path.name}:{n}: label {row['label']!r} not one of {CLASSES}")
            label = CLASSES.index(row["label"])
            rows += [(row["prompt"], label), (f"{rng.choice(people)}, {row['prompt']}", label)]
    return rows


def read_snapshot(path: Path = LISTS_SNAPSHOT) -> list[tuple[str, int]]:
    """The lists' rows as they were last taken (``--refresh-lists``): one JSON ``[text, label]`` a line."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [(text, int(label)) for text, label in (json.loads(line) for line in fh if line.strip())]


def write_snapshot(rows: list[tuple[str, int]], path: Path = LISTS_SNAPSHOT) -> None:
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fh:
        for text, label in rows:
            fh.write((json.dumps([text, label], ensure_ascii=False) + "\n").encode("utf-8"))


def corpus(seed: int = 11, *, prompts: bool = True, refresh_lists: bool = False) -> list[tuple[str, int]]:
    """The training rows: each language's fragments in carriers, the lists' rows (from the snapshot, or the
    lists as they are now with ``refresh_lists``, which also rewrites the snapshot) and whole prompts."""
    rng = random.Random(seed)
    files = sorted(CORPUS.glob("*.toml"))
    styles = _load(CORPUS / "en.toml")["styles"]
    rows: list[tuple[str, int]] = []
    benign: dict[str, list[str]] = {}
    for path in files:
        data = _load(path)
        benign[path.stem] = data["benign"]
        rows += language_corpus(rng, path.stem, data, styles)
    if refresh_lists:
        listed = list_corpus(rng, styles, benign)
        write_snapshot(listed)
    else:
        listed = read_snapshot()
    rows += listed
    if prompts:
        rows += prompt_corpus()
    return rows


def matrix(texts: list[str]):
    from scipy.sparse import csr_matrix

    indptr, indices, values = [0], [], []
    for text in texts:
        feats = features(text)
        indices.extend(feats)
        values.extend([1.0 / max(1, len(feats)) ** 0.5] * len(feats))  # unit length, as the model scores
        indptr.append(len(indices))
    return csr_matrix((np.array(values, dtype=np.float32), indices, indptr), shape=(len(texts), BUCKETS))


def train(rows: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import SGDClassifier

    x = matrix([t for t, _ in rows])
    y = np.array([label for _, label in rows])
    # Logistic loss by SGD, seeded: seconds on one core; the L2 term keeps rare n-grams small.
    model = SGDClassifier(loss="log_loss", alpha=ALPHA, max_iter=30, tol=None, class_weight="balanced",
                          random_state=0, average=True)
    model.fit(x, y)
    return model.coef_.astype(np.float16), model.intercept_.astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "moderation" / "data" / MODEL_FILE)
    parser.add_argument("--refresh-lists", action="store_true",
                        help=f"take the lists as they are now into {LISTS_SNAPSHOT.name} before training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    rows = corpus(refresh_lists=args.refresh_lists)
    log.info("corpus: %d texts (%s)", len(rows), {c: sum(1 for _, y in rows if y == i) for i, c in enumerate(CLASSES)})
    weights, bias = train(rows)
    np.savez_compressed(args.out, weights=weights, bias=bias)
    log.info("wrote %s (%.1f MB)", args.out, args.out.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
