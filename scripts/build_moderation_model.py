"""Rebuild moderation/data/learned.npz, the learned layer's weights (moderation/learned.py).

Run: ``.venv/bin/python scripts/build_moderation_model.py``. The corpus is built from the lists only
(never from tests/data, which measures the layer): every explicit sexual or gore term and every
act/body pair, in every language, inside carrier prompts, against benign text made of everything the
lists say is not explicit (allowlisted phrases, protected names, minor signals alone, context words,
suggestive words), ordinary English words and, where simplemma (a dev dependency, MIT) is installed,
ordinary words of the other languages from its dictionaries, minus any word that contains an explicit
term. Deterministic: the same lists and dictionaries give the same weights.
"""

from __future__ import annotations

import logging
import random
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from moderation.fuzzy import known_words  # noqa: E402
from moderation.learned import BUCKETS, CLASSES, MODEL_FILE, features  # noqa: E402
from moderation.rules import (  # noqa: E402
    _FILES,
    BODY,
    EXPLICIT,
    INJURY,
    _load_file,
)

log = logging.getLogger(__name__)

CARRIERS = ("{t}", "{t}, photo", "{t}, 8k, detailed", "masterpiece, {t}", "{t}, oil painting",
            "cinematic shot, {t}, soft light", "{a} {t}", "{t} {a}", "{a}, {t}, {b}")
FILLERS = ("woman", "man", "person", "portrait", "studio", "beach", "bedroom", "night", "forest", "city",
           "realistic", "anime", "close up", "full body", "4k", "film grain", "watercolor")


def _entries() -> list:
    from moderation.languages import language_data

    entries = []
    for name in _FILES:
        entries.extend(_load_file(name))
    data = language_data()
    entries.extend(data.entries)
    entries.extend(data.script)
    return entries


def _carrier(rng: random.Random, term: str) -> str:
    return rng.choice(CARRIERS).format(t=term, a=rng.choice(FILLERS), b=rng.choice(FILLERS))


DICTIONARY_LANGUAGES = ("es", "pt", "fr", "de", "it", "nl", "pl", "tr", "id", "ru")
PER_LANGUAGE = 6000


def dictionary_words(rng: random.Random, explicit_stems: set[str]) -> list[str]:
    """Ordinary words of other languages (the layer scores words no list knows; most are harmless)."""
    try:
        from anyascii import anyascii
        from simplemma.strategies.dictionaries import DefaultDictionaryFactory
    except ImportError:
        log.warning("simplemma not installed: training without other languages' ordinary words")
        return []
    factory = DefaultDictionaryFactory()
    explicit = re.compile("|".join(re.escape(stem) for stem in sorted(explicit_stems)))
    out: list[str] = []
    for lang in DICTIONARY_LANGUAGES:
        words = sorted({w.lower() for w in factory.get_dictionary(lang) if w.isalpha() and len(w) >= 5})
        words = rng.sample(words, min(PER_LANGUAGE, len(words)))
        if lang == "ru":
            words = [anyascii(w).replace("'", "") for w in words]
        out.extend(w for w in words if not explicit.search(w))
    return out


def corpus(seed: int = 7) -> tuple[list[str], list[int]]:
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    entries = _entries()
    explicit = [e for e in entries if e.tier == EXPLICIT and e.category in ("sexual", "gore")]
    for e in explicit:
        texts.append(e.term.rstrip("*"))  # the layer scores single words
        labels.append(CLASSES.index(e.category))
        for _ in range(4):
            texts.append(_carrier(rng, e.term.rstrip("*")))
            labels.append(CLASSES.index(e.category))
    for category in ("sexual", "gore"):
        acts = [e.term.rstrip("*") for e in entries if e.tier == INJURY and e.category == category]
        parts = [e.term.rstrip("*") for e in entries if e.tier == BODY and e.category == category]
        for _ in range(len(acts) * 3):
            a, p = rng.choice(acts), rng.choice(parts)
            texts.append(_carrier(rng, f"{a} {p}" if rng.random() < 0.5 else f"{p} {a}"))
            labels.append(CLASSES.index(category))
    benign = [e.term.rstrip("*") for e in entries
              if not (e.tier == EXPLICIT and e.category in ("sexual", "gore")) and e.tier not in (INJURY, BODY)]
    # Body parts and injuries alone are ordinary words ("head", "cut"); only pairs are explicit.
    benign += [e.term.rstrip("*") for e in entries if e.tier in (INJURY, BODY)]
    words = sorted(known_words())
    rng.shuffle(words)
    benign += words[:8000]
    for term in benign:
        texts.append(_carrier(rng, term))
        labels.append(0)
    from moderation.rules import phrase_key

    stems = {phrase_key(e.term)[:6] for e in explicit if " " not in phrase_key(e.term) and len(phrase_key(e.term)) >= 5}
    for word in dictionary_words(rng, stems):
        texts.append(word)
        labels.append(0)
    return texts, labels


def train(texts: list[str], labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import SGDClassifier

    rows, cols = [], []
    for i, text in enumerate(texts):
        for f in set(features(text)):
            rows.append(i)
            cols.append(f)
    x = csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(texts), BUCKETS))
    # Logistic loss by SGD: seconds on one core where a full solver takes many minutes; seeded.
    model = SGDClassifier(loss="log_loss", alpha=2e-6, max_iter=20, tol=None, class_weight="balanced",
                          random_state=0)
    model.fit(x, np.array(labels))
    return model.coef_.astype(np.float16), model.intercept_.astype(np.float32)


def main() -> int:
    logging.basicConfig(level=logging.INFO)
    texts, labels = corpus()
    log.info("corpus: %d texts (%s)", len(texts), {c: labels.count(i) for i, c in enumerate(CLASSES)})
    weights, bias = train(texts, labels)
    out = ROOT / "moderation" / "data" / MODEL_FILE
    np.savez_compressed(out, weights=weights, bias=bias)
    log.info("wrote %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
