"""Turn a prompt into plain lowercase ASCII words so the lists match whatever the spelling tricks.

Order matters (each step relies on the ones before it): NFKC folds fullwidth, maths-styled
and circled letters; dropping format/combining/control characters removes zero-width joiners and
accents; a homoglyph table maps Cyrillic and Greek look-alikes inside otherwise Latin (or all look-alike)
words; anyascii transliterates the rest (small caps, enclosed letters); then leetspeak is undone only in
words that look disguised, so "4k", "1girl", "3d" and "1920s" stay what they are.

Several variants come out, because no single one is right for every trick: ``text`` (tokens),
``collapsed`` (runs of single letters joined: "n u d e", "s.e.x") and ``aggressive`` (every digit
read as a letter, stretched letters squeezed: "nuuude", "1oli"). Words with an inner ``*`` are kept
apart as wildcards ("n*de") for the rule layer to resolve against its own vocabulary.
"""

from __future__ import annotations

import logging
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from anyascii import anyascii

log = logging.getLogger(__name__)

# Look-alikes that NFKC and transliteration get wrong (anyascii reads Cyrillic "р" as "r", "с" as "s").
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c",
    "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l",
    "ԛ": "q", "ԝ": "w", "ɡ": "g", "п": "n", "г": "r", "ь": "b", "ы": "bi", "з": "3", "ч": "4",
    "А": "a", "В": "b", "Е": "e", "К": "k", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Т": "t",
    "Х": "x", "Ѕ": "s", "І": "i", "Ј": "j", "У": "y",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t",
    "υ": "u", "χ": "x", "ω": "w", "μ": "u", "γ": "y", "δ": "d", "ς": "s", "σ": "o", "λ": "a",
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n", "Ο": "o",
    "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x",
}
_LATIN = re.compile(r"[A-Za-z]")
_LOOKALIKE = re.compile("[" + "".join(re.escape(ch) for ch in _HOMOGLYPHS) + "]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)

# Digits and symbols people put in place of letters.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "€": "e", "+": "t"})
_LEET_L = str.maketrans({"1": "l", "|": "l", "!": "l"})
# A token is treated as leet only when a letter sits before a digit/symbol ("s3x", "n00d", "p0rn", "nud3").
_DISGUISED = re.compile(r"[a-z][0-9@$!|€+]|[0-9@$!|€+][a-z][0-9@$!|€+]*[a-z]*[0-9@$!|€+]")
# Counts and measures that must survive: 4k, 8k, 1girl, 2boys, 3d, 1920s, 50mm, 16k, 12yo, 4x.
_NUMERIC_PREFIX = re.compile(r"^\d+(?:[a-z]{1,6})?$")
_TOKEN = re.compile(r"[a-z0-9@$!|€+*]+")
_STRETCH = re.compile(r"([a-z])\1{2,}")
_HAS_LEET = re.compile(r"[0-9@$!|€+]")
_HAS_ALPHA = re.compile(r"[a-z]")
_MIXED = re.compile(r"[a-z][0-9@$!|€+]|[0-9@$!|€+][a-z]")
_MIXED_ONE = re.compile(r"[a-z][1|!]|[1|!][a-z]")
_SINGLES = re.compile(r"(?:^| )[a-z] [a-z] [a-z](?: |$)")
# "v" between two consonants stands for "u" ("nvde", "pvssy", "cvm"): no English word needs it there.
_V_FOR_U = re.compile(r"(?<=[b-df-hj-np-tv-xz])v(?=[b-df-hj-np-tv-xz])")
# Short fragments ("lo li", "nu de", "po rn") are joined unless one of them is a common short word.
_COMMON_SHORT = frozenset("""
a i an as at be by do go he if in is it me my no of oh ok on or so to up us we ye am are and any all
but can did for get got had has her him his how its let may new nor not now off old one our out own
per put saw say see she the too two use was way who why yet you big bad red hot top low few far end
pen ink box car cat dog sun sky sea day man men art mix pop war fan fun bed lit led set run cut sit
""".split())


@dataclass(frozen=True)
class Normalized:
    """The variants of one prompt that the rule layer matches; ``text`` is the one shown to moderators."""

    original: str
    text: str
    tokens: tuple[str, ...]
    collapsed: str
    aggressive: str
    literal: str = ""
    wildcards: tuple[str, ...] = field(default=())
    # Cyrillic read as Russian (anyascii alone, no look-alike folding): "порно" -> "porno", not "nopho"
    translit: str = ""

    def variants(self) -> list[str]:
        """Distinct variants to match, ``text`` first."""
        seen: list[str] = []
        for v in (self.text, self.collapsed, self.aggressive, self.literal, self.translit):
            if v and v not in seen:
                seen.append(v)
        return seen


def _fold_word(match: re.Match[str]) -> str:
    word = match.group(0)
    if word.isascii():
        return word
    lookalikes = sum(1 for ch in word if ch in _HOMOGLYPHS)
    if lookalikes and (_LATIN.search(word) or lookalikes == len(word)):
        return "".join(_HOMOGLYPHS.get(ch, ch) for ch in word)
    return word


_CONTROL = {i: None for i in range(32) if chr(i) not in "\n\t"} | {127: None, ord("'"): None}


def fold(text: str) -> str:
    """Unicode tricks to lowercase ASCII; punctuation is kept for tokenising."""
    if text.isascii():  # the common case: nothing to fold
        return text.translate(_CONTROL).lower()
    return _fold_other(text)


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Every combining mark, enclosing mark, format and control character but newline and tab: what folding
    drops after decomposing ("é" -> "e", zero-width joiners, emoji tags). Built once (about 0.2 s) from the
    Unicode database as ranges at import, so that dropping them is a regex pass instead of a Python loop over
    the characters: one class for the Basic Multilingual Plane (fast), one for all planes (slower; only for
    text that has characters beyond it)."""
    ranges: list[list[int]] = []
    for c in range(sys.maxunicode + 1):
        if unicodedata.category(chr(c)) in ("Mn", "Me", "Cf", "Cc") and chr(c) not in "\n\t":
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])

    def charset(spans: list[list[int]]) -> re.Pattern[str]:
        return re.compile("[" + "".join(re.escape(chr(a)) + (f"-{re.escape(chr(b))}" if b > a else "")
                                        for a, b in spans) + "]+")

    return charset([r for r in ranges if r[1] < 0x10000]), charset(ranges)


_BASIC_MARKS, _EVERY_MARK = _marks()


@lru_cache(maxsize=4096)
def _fold_other(text: str) -> str:
    """Text in other scripts: one check folds the same prompt and clauses several times (lists, contexts)."""
    text = unicodedata.normalize("NFKC", text)
    if _LOOKALIKE.search(text):  # most text has none: no call per word
        text = _WORD.sub(_fold_word, text)
    text = _BASIC_MARKS.sub("", unicodedata.normalize("NFD", text))
    if _ASTRAL.search(text):
        text = _EVERY_MARK.sub("", text)
    text = text if text.isascii() else anyascii(text)
    return text.lower().replace("'", "").replace("’", "")


def _deleet(token: str, *, aggressive: bool) -> str:
    if "*" in token or not _HAS_LEET.search(token):
        return token
    if not _HAS_ALPHA.search(token):
        return token if not aggressive else token.translate(_LEET)
    if _NUMERIC_PREFIX.match(token) and not aggressive:
        return token
    if aggressive or _DISGUISED.search(token):
        return token.translate(_LEET)
    return token


def _join_runs(tokens: list[str], member: Callable[[str], bool],
               join: Callable[[list[str]], list[str]]) -> list[str]:
    """``tokens`` with each run of consecutive ``member`` tokens replaced by ``join(run)``."""
    out: list[str] = []
    run: list[str] = []
    for tok in tokens:
        if member(tok):
            run.append(tok)
            continue
        if run:
            out.extend(join(run))
            run = []
        out.append(tok)
    if run:
        out.extend(join(run))
    return out


def _single_letter(tok: str) -> bool:
    return len(tok) == 1 and tok.isalpha()


def _join_singles(run: list[str]) -> list[str]:
    if len(run) < 3:
        return run
    if run[0] in ("a", "i") and len(run) >= 4:
        return [run[0], "".join(run[1:])]
    return ["".join(run)]


def _collapse_singles(tokens: list[str]) -> list[str]:
    """Join runs of 3+ one-letter tokens ("n u d e" -> "nude"); a leading "a"/"i" stays a word."""
    return _join_runs(tokens, _single_letter, _join_singles)


def _fragment(tok: str) -> bool:
    return len(tok) <= 3 and tok not in _COMMON_SHORT and tok.isalpha()


def _has_fragments(tokens: list[str]) -> bool:
    """Two fragments in a row: the only case _join_fragments changes anything."""
    prev = False
    for tok in tokens:
        cur = len(tok) <= 3 and _fragment(tok)
        if cur and prev:
            return True
        prev = cur
    return False


def _join_fragment_run(run: list[str]) -> list[str]:
    return ["".join(run)] if len(run) >= 2 and sum(map(len, run)) >= 4 else run


def _join_fragments(tokens: list[str]) -> list[str]:
    """Join runs of 2+ fragments of 1-3 letters ("lo li" -> "loli") that aren't common short words."""
    return _join_runs(tokens, _fragment, _join_fragment_run)


# French and Italian elisions ("d'Orangina", "l'enfant", "dell'Inter"): folding drops the apostrophe and glues the
# article to the word ("dorangina"); a variant splits them, so the lists see the word itself.
_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|lorsqu|puisqu|jusqu|quoiqu|dell|dall|nell|sull|all|coll|"
                      r"un|quell|bell|sant|nessun|buon)['’](?=\w)", re.IGNORECASE)


def _elided(prompt: str) -> str:
    """The prompt's tokens with elided articles split off, or "" when it has none."""
    if ("'" not in prompt and "’" not in prompt) or not _ELISION.search(prompt):
        return ""
    split = _ELISION.sub(lambda m: m.group(0)[:-1] + " ", prompt)
    return " ".join(t.replace("*", "") for t in _TOKEN.findall(fold(split)) if t.strip("*"))


@lru_cache(maxsize=4096)
def normalize(prompt: str) -> Normalized:
    """All variants of ``prompt``; cached because the same prompts come back (rerolls, variations)."""
    folded = fold(prompt)
    raw = _TOKEN.findall(folded)
    wildcards: list[str] = []
    tokens: list[str] = []
    for tok in raw:
        inner = tok.strip("*")
        if not inner:
            continue
        if "*" in inner and any(c.isalpha() for c in inner):
            wildcards.append(inner)
        tokens.append(_deleet(inner, aggressive=False).replace("*", ""))
    tokens = [t.strip("@$!|€+") or t for t in tokens]
    text = " ".join(tokens)
    collapsed = " ".join(_collapse_singles(tokens)) if _SINGLES.search(text) else text
    if _MIXED.search(folded) or _STRETCH.search(folded):
        aggr_tokens = [_STRETCH.sub(r"\1", _deleet(t, aggressive=True)) for t in _TOKEN.findall(folded)]
        aggr_tokens = [t.replace("*", "") for t in aggr_tokens if t.strip("*")]
        aggressive = " ".join(_collapse_singles(aggr_tokens))
    else:
        aggressive = collapsed
    if _MIXED_ONE.search(folded):
        alt = " ".join(t.translate(_LEET_L).translate(_LEET) for t in _TOKEN.findall(folded))
        aggressive = f"{aggressive} | {alt}"
    if _V_FOR_U.search(text):
        aggressive = f"{aggressive} | {_V_FOR_U.sub('u', text)}"
    if _has_fragments(tokens):
        aggressive = f"{aggressive} | {' '.join(_join_fragments(tokens))}"
    elided = _elided(prompt)
    if elided:
        aggressive = f"{aggressive} | {elided}"
    literal = " ".join(t for t in (tok.replace("*", "") for tok in raw) if t)
    translit = ""
    if _CYRILLIC.search(prompt):
        plain = anyascii(unicodedata.normalize("NFKC", prompt)).lower().replace("'", "")
        translit = " ".join(re.findall(r"[a-z0-9]+", plain))
    return Normalized(
        original=prompt,
        literal=literal,
        text=text,
        tokens=tuple(tokens),
        collapsed=collapsed,
        aggressive=aggressive,
        wildcards=tuple(wildcards),
        translit=translit,
    )
