"""The learned layer: a linear classifier over hashed character n-grams, in every script.

Lists match words as written; this layer scores the pieces of words, so inflections, diminutives and
compounds that no list spells out ("desnudita", "Nacktbadestrand", "голенькие") still read as what
they are. It is trained by ``scripts/build_moderation_model.py`` on a corpus built from the lists
themselves (explicit terms in carrier prompts against names, allowlisted phrases, minor signals and
ordinary English words) and ships as ``data/learned.npz``: numpy at run time, nothing downloaded.
It scores single words, and only words that neither the lists nor the English vocabulary know: a
whole prompt of ordinary words is never its business, which keeps it from refusing "a baby sleeping
in a crib" for sharing letters with something explicit. Like the semantic layer it only runs where
the lists found nothing to block, and it refuses only at a high probability; what it cannot do is
recognise a paraphrase made of words it has never seen.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import zlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from anyascii import anyascii

from moderation.lazy import LazyModel

log = logging.getLogger(__name__)

BUCKETS = 1 << 18
NGRAMS = (2, 3, 4, 5)
CLASSES = ("benign", "sexual", "gore")
THRESHOLD = 0.99  # probability a class needs before this layer reports it
MODEL_FILE = "learned.npz"
MIN_LETTERS = 5  # shorter words are too ambiguous to judge by their letters
_WORDS = re.compile(r"\w+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# Scripts written without spaces: a "word" there is a whole clause, which this model never saw.
_UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_MEMO = 50_000


def features(text: str) -> list[int]:
    """Hashed character n-grams of each word, padded with spaces so word starts and ends count."""
    text = unicodedata.normalize("NFKC", text).lower()
    out: list[int] = []
    for word in text.split():
        word = "".join(ch for ch in word if ch.isalnum())
        if not word:
            continue
        padded = f" {word} "
        for n in NGRAMS:
            for i in range(len(padded) - n + 1):
                out.append(zlib.crc32(padded[i:i + n].encode("utf-8")) & (BUCKETS - 1))
    return out


@dataclass(frozen=True)
class LearnedHit:
    category: str
    word: str
    probability: float


def unknown_words(text: str, known: frozenset[str] | set[str]) -> list[tuple[str, str]]:
    """(as written, as scored) for the words worth scoring: long enough, and known to neither the lists
    nor the vocabulary. Cyrillic is scored in the Latin transliteration the lists were trained in."""
    from moderation.rules import phrase_key  # the lists' folding: "çıplak" is the listed "ciplak"

    text = unicodedata.normalize("NFKC", text).lower()
    out: list[tuple[str, str]] = []
    for word in _WORDS.findall(text):
        if _UNSPACED.search(word) or len(word) < MIN_LETTERS or word.isdigit():
            continue
        key = anyascii(word).replace("'", "") if _CYRILLIC.search(word) else word
        folded = phrase_key(word)
        if key not in known and folded not in known:
            out.append((word, key))
    return out


class LearnedLayer(LazyModel):
    """Loads the packaged weights once; scoring is a sum of weight columns, safe across threads."""

    unavailable = "learned moderation layer unavailable"

    def __init__(self) -> None:
        super().__init__(available=resources.files("moderation.data").joinpath(MODEL_FILE).is_file(),
                         missing=f"moderation/data/{MODEL_FILE} missing")
        self._weights: Any = None
        self._bias: Any = None
        self._memo: dict[str, tuple[str, float]] = {}  # word -> (most likely harmful class, probability)

    def _loaded(self) -> bool:
        return self._weights is not None

    def _load(self) -> None:
        import numpy as np

        with resources.files("moderation.data").joinpath(MODEL_FILE).open("rb") as fh:
            data = np.load(fh)
            self._bias = data["bias"].astype(np.float32)
            self._weights = data["weights"].astype(np.float32)

    def probabilities(self, text: str) -> dict[str, float]:
        if not self.load():
            return {}
        import numpy as np

        idx = features(text)
        if not idx:
            return {}
        logits = self._bias + self._weights[:, idx].sum(axis=1)
        exp = np.exp(logits - logits.max())
        probs = exp / exp.sum()
        return {c: float(p) for c, p in zip(CLASSES, probs, strict=True)}

    def word_score(self, word: str) -> tuple[str, float]:
        known = self._memo.get(word)
        if known is None:
            probs = self.probabilities(word)
            known = max(((c, p) for c, p in probs.items() if c != "benign"), key=lambda cp: cp[1],
                        default=("benign", 0.0))
            if len(self._memo) >= _MEMO:
                self._memo.clear()  # bounded: prompts share most of their words
            self._memo[word] = known
        return known

    def check(self, text: str, known: frozenset[str] | set[str]) -> list[LearnedHit]:
        """Unknown words that read as sexual or gore with probability >= THRESHOLD."""
        hits: list[LearnedHit] = []
        for word, key in unknown_words(text, known):
            category, probability = self.word_score(key)
            if probability >= THRESHOLD:
                hits.append(LearnedHit(category, word, probability))
        return hits
