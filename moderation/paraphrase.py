"""The learned layer's prompt model: paraphrases with no listed word, in every language the lists cover.

The word model (moderation/learned.py) reads single words no list knows; this one reads whole clauses,
so "with nothing on", "sin nada encima", "ohne einen Faden am Leib", "一丝不挂" or "skin peeled off his
arm" read as what they say even though no word of them is explicit. It is a linear classifier over
hashed features of each clause (the words, word pairs and character n-grams of each word; character
1-3-grams in scripts written without spaces), trained by ``scripts/build_moderation_model.py`` on the
hand-written corpus in ``data/corpus/<lang>.toml`` plus the lists, and shipped as
``data/paraphrase.npz`` (numpy at run time, nothing downloaded, about 1 MB).

A prompt is scored clause by clause (split at commas and sentence ends) and as a whole; the most
harmful reading counts. Two thresholds, following the policy of reasons: at or above ``BLOCK`` the
reading counts like a listed term (the category's action, blocked under the default policy); between
``FLAG`` and ``BLOCK`` the model is unsure and the prompt is only flagged (a notice, never a refusal).
The reason quotes the clause.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from typing import Any

from anyascii import anyascii

from moderation.lazy import LazyModel

log = logging.getLogger(__name__)

BUCKETS = 1 << 18
CLASSES = ("benign", "sexual", "gore")
MODEL_FILE = "paraphrase.npz"
BLOCK = 0.90  # probability at which a reading counts like a listed term
FLAG = 0.85  # probability at which an unsure reading is flagged (a notice)
KEYWORD = 0.6  # a word this harmful on its own is a keyword: a reading must lean the same way without it
REST = 0.5  # how far: the clause without the keyword reads harmful at this probability or more
CHILD_REST = 0.25  # as far for a sexual reading beside an age cue, for a keyword no list knows
CHAR_NGRAMS = (3, 4, 5)
CJK_NGRAMS = (1, 2, 3)
CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\uf900-\ufaff]")
# Japanese and Chinese: a "word" is a whole run of text, never left out as one word (Korean has spaces).
UNSPACED = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"\w+")
CLAUSE_BREAK = re.compile(r"[,;.!?:()\[\]{}|/\n，、。！？：；（）「」『』]+")
_MEMO = 50_000


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exp = [math.exp(v - top) for v in logits]
    total = sum(exp)
    return [e / total for e in exp]


def _hash(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) & (BUCKETS - 1)


_token_memo: dict[str, tuple[str, tuple[int, ...]]] = {}


def _token(word: str) -> tuple[str, tuple[int, ...]]:
    """A word's folded form and the hashed features of the word alone (itself, its n-grams)."""
    known = _token_memo.get(word)
    if known is not None:
        return known
    if CJK.search(word):
        key = word
        feats = [_hash(f"c|{word[i:i + n]}") for n in CJK_NGRAMS for i in range(len(word) - n + 1)]
        feats.append(_hash(f"w|{word}"))
    else:
        key = anyascii(word).lower().replace("'", "") if not word.isascii() else word
        padded = f"<{key}>"
        feats = [_hash(f"w|{key}")]
        if len(key) >= 3:
            feats += [_hash(padded[i:i + n]) for n in CHAR_NGRAMS for i in range(len(padded) - n + 1)]
    if len(_token_memo) >= _MEMO:
        _token_memo.clear()  # bounded: prompts share most of their words
    _token_memo[word] = result = (key, tuple(feats))
    return result


def clause_texts(text: str) -> list[str]:
    """The prompt split at commas and sentence ends (NFKC, lowercase)."""
    return [part for part in CLAUSE_BREAK.split(unicodedata.normalize("NFKC", text).lower()) if part.strip()]


def clauses(text: str, allowed: Callable[[str], bool] | None = None) -> list[tuple[list[str], bool]]:
    """The prompt's clauses: each clause's words, and whether it is to be read. ``allowed`` (a clause in)
    marks the clauses the caller's lists judge (an allowlisted phrase, a negated term: "没有裸体"), in any
    script: they are not read, only kept as their neighbours' context ("peeling an orange, skin peeled off"
    is fruit)."""
    out = []
    for part in clause_texts(text):
        found = _WORD.findall(part)
        if found:
            out.append((found, not (allowed is not None and allowed(part))))
    return out


def clause_features(words: list[str]) -> tuple[list[int], list[str]]:
    """Hashed features of one clause (each word's, plus adjacent pairs) and the words' folded forms."""
    feats: list[int] = []
    keys: list[str] = []
    for word in words:
        key, fs = _token(word)
        keys.append(key)
        feats.extend(fs)
    feats.extend(_hash(f"b|{a} {b}") for a, b in pairwise(keys))
    return feats, keys


def features(text: str) -> list[int]:
    """Every feature of the whole text, as the model is trained on (a set: presence, not counts)."""
    out: set[int] = set()
    for words, _ in clauses(text):
        out.update(clause_features(words)[0])
    return sorted(out)


@dataclass(frozen=True)
class Reading:
    """The most harmful reading of a prompt: its category, probability and the clause that reads so."""

    category: str
    probability: float
    clause: str

    @property
    def certain(self) -> bool:
        return self.probability >= BLOCK


class ParaphraseModel(LazyModel):
    """Loads the packaged weights once; scoring is sums of weight columns, safe across threads."""

    unavailable = "learned paraphrase model unavailable"

    def __init__(self) -> None:
        super().__init__(available=resources.files("moderation.data").joinpath(MODEL_FILE).is_file(),
                         missing=f"moderation/data/{MODEL_FILE} missing")
        self._weights: Any = None
        self._bias: Any = None
        self._harm: dict[str, float] = {}  # word -> its harmful probability alone

    def _loaded(self) -> bool:
        return self._weights is not None

    def _load(self) -> None:
        import numpy as np

        with resources.files("moderation.data").joinpath(MODEL_FILE).open("rb") as fh:
            data = np.load(fh)
            self._bias = data["bias"].astype(np.float32)
            # One row per bucket, one column per class: a prompt's features are a row gather.
            self._weights = np.ascontiguousarray(data["weights"].astype(np.float32).T)

    def _probabilities(self, idx: list[int]) -> list[float]:
        rows = sorted(set(idx))
        return _softmax((self._bias + self._weights[rows].sum(axis=0) / math.sqrt(len(rows))).tolist())

    def _robust(self, words: list[str], listed: frozenset[str] | None = None) -> list[float]:
        """Class probabilities of a clause, at their lowest with any one keyword left out. A keyword is a
        word that reads as harmful on its own: single words are the lists' business (and the word
        model's), so a clause needs evidence beyond one of them ("execution of a plan" or "blood orange
        sorbet" are not gore for one word), while context words that are harmless alone ("with nothing
        on") are what this model is for and are never left out. Runs of text in scripts without spaces
        are never left out either. ``listed`` (given when the prompt has an age cue): the words the lists
        know; a sexual reading then needs the rest of the clause to lean its way only down to
        ``CHILD_REST`` for a keyword they don't know."""
        per_word: list[list[int]] = []
        keys: list[str] = []
        for word in words:
            key, fs = _token(word)
            keys.append(key)
            per_word.append(list(fs))
        pairs = {_hash(f"b|{a} {b}") for a, b in pairwise(keys)}
        counts: dict[int, int] = {}
        for fs in per_word:
            for f in set(fs):
                counts[f] = counts.get(f, 0) + 1
        present = pairs | set(counts)
        base = self._weights[sorted(present)].sum(axis=0)
        worst = _softmax((self._bias + base / math.sqrt(len(present))).tolist())
        for i, word in enumerate(words):
            if UNSPACED.search(word) or self._word_harm(keys[i], per_word[i]) < KEYWORD:
                continue
            strict = listed is None or keys[i] in listed
            if len(words) == 1:
                return [1.0, 0.0, 0.0]  # a keyword alone: not this model's to judge
            gone = [f for f in set(per_word[i]) if counts[f] == 1]
            left = base - self._weights[gone].sum(axis=0) if gone else base
            probs = _softmax((self._bias + left / math.sqrt(max(1, len(present) - len(gone)))).tolist())
            # The rest must lean the same way (REST), not carry the reading alone; beside an age cue, less far.
            bars = (REST if strict else CHILD_REST, REST)
            worst = [worst[0], *(worst[c] if probs[c] >= bars[c - 1] else min(worst[c], probs[c]) for c in (1, 2))]
        return worst

    def _word_harm(self, key: str, feats: list[int]) -> float:
        known = self._harm.get(key)
        if known is None:
            rows = sorted(set(feats))
            probs = _softmax((self._bias + self._weights[rows].sum(axis=0) / math.sqrt(len(rows))).tolist())
            known = max(probs[1], probs[2])
            if len(self._harm) >= _MEMO:
                self._harm.clear()
            self._harm[key] = known
        return known

    def probabilities(self, text: str) -> dict[str, float]:
        """Class probabilities of the whole text (the sentence model's second opinion; the build script's
        evaluation)."""
        if not self.load():
            return {}
        idx = features(text)
        if not idx:
            return {c: float(c == "benign") for c in CLASSES}
        return dict(zip(CLASSES, self._probabilities(idx), strict=True))

    def read(self, text: str, allowed: Callable[[str], bool] | None = None, *,
             listed: frozenset[str] | None = None, alone: bool = False) -> Reading | None:
        """The most harmful reading of any clause, or None when every reading is below ``FLAG``.
        ``allowed``: see ``clauses``; ``listed``: see ``_robust``; ``alone``: each clause read alone, not also
        beside its neighbours."""
        if not self.load():
            return None
        parts = clauses(text, allowed)
        words = [ws for ws, _ in parts]
        best: tuple[float, int, list[str]] | None = None
        for i, ws in enumerate(words):
            if not parts[i][1]:
                continue
            # A clause reads the same beside its neighbours: "skin peeled off" after "peeling an orange"
            # is fruit; a clause among style tags ("8k", "photorealistic") keeps its reading.
            probs = self._robust(ws, listed)
            for j in (i - 1, i + 1):
                if not alone and 0 <= j < len(words) and max(probs[1:]) >= FLAG:
                    pair = self._robust(words[j] + ws if j < i else ws + words[j], listed)
                    probs = [probs[0], min(probs[1], pair[1]), min(probs[2], pair[2])]
            for c in (1, 2):
                if probs[c] >= FLAG and (best is None or probs[c] > best[0]):
                    best = (probs[c], c, ws)
        if best is None:
            return None
        probability, c, ws = best
        return Reading(CLASSES[c], probability, " ".join(ws))
