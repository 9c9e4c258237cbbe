"""The list layer: categorised terms and names from ``data/*.toml`` matched as whole words.

Every list is compiled into one dict keyed by the normalised phrase, plus an index from first word to
the longest phrase starting with it, so a prompt costs one dict probe per word (and a few more where a
listed phrase starts), never a loop over thousands of regexes.
Matching is on word boundaries of normalised text, never substrings, so "Scunthorpe", "assassin",
"cocktail", "therapist" and "analysis" pass. A match that lies inside an allowlisted phrase ("naked
mole rat", "chicken breast") or right after a negation ("no nudity") is dropped.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from moderation.ages import AgeFinder
from moderation.context import drop_benign_context, drop_gore_in_benign_scenes, drop_nudity_in_art_and_anatomy
from moderation.fuzzy import Fuzzy, known_words
from moderation.langid import identify
from moderation.normalize import Normalized, fold, normalize

log = logging.getLogger(__name__)

# Tiers: how a list entry counts.
EXPLICIT = "explicit"  # refuses on its own under the default policy
SUGGESTIVE = "suggestive"  # harmless alone; a sexual signal for the minors rule
SIGNAL = "signal"  # a minor signal
NAME = "name"  # a protected name that flags alone
AMBIGUOUS = "ambiguous"  # a protected name that needs a second signal
CONTEXT = "context"  # a second signal for ambiguous names of its category
ADULT = "adult"  # used only in negative prompts (the "negative: adult" trick)
ALLOW = "allow"
PUBLIC_DOMAIN = "public-domain"
INJURY = "injury"  # gore: an injury word ("bloody", "severed") that counts next to a BODY word
BODY = "body"  # gore: a body part or remains ("stump", "flesh", "limbs")
NEAR_MISS = "near-miss"  # a real word a letter away from an explicit term: never read as a misspelling

# Where a match found by substring in a script without spaces sits in Match.start/end (a character
# offset added to this): far past any token index, so it never pairs with a word of the Latin variants.
SCRIPT_OFFSET = 1_000_000

NEGATORS = frozenset({"no", "not", "without", "non", "sfw", "never", "avoid", "zero", "nothing"})
NEGATION_WINDOW = 2  # a negator counts up to this many words before the term ("no more nudity")


@dataclass(frozen=True)
class Negation:
    """A language's negators: words before a term ("sin", "nicht"), and after it ("çıplak değil")."""

    before: frozenset[str] = frozenset()
    after: frozenset[str] = frozenset()


ENGLISH_NEGATION = Negation(NEGATORS)

# Files and the (category, table -> tier) they hold.
_FILES: dict[str, tuple[str, dict[str, str]]] = {
    "sexual.toml": ("sexual", {"explicit": EXPLICIT, "suggestive": SUGGESTIVE, "act": INJURY, "part": BODY}),
    "minors.toml": ("minors", {"terms": SIGNAL, "adult_markers": ADULT}),
    "gore.toml": ("gore", {"terms": EXPLICIT, "injury": INJURY, "body": BODY}),
    "copyright.toml": ("copyright", {"terms": NAME, "ambiguous": AMBIGUOUS, "context": CONTEXT}),
    "living_artists.toml": ("living-artist", {"terms": NAME, "ambiguous": AMBIGUOUS, "context": CONTEXT}),
    "real_people.toml": ("real-person", {"terms": NAME, "ambiguous": AMBIGUOUS, "context": CONTEXT}),
    "trademarks.toml": ("trademark", {"terms": NAME, "ambiguous": AMBIGUOUS, "context": CONTEXT}),
    "allow.toml": ("allow", {"phrases": ALLOW, "public_domain_artists": PUBLIC_DOMAIN,
                             "near_misses": NEAR_MISS}),
}


@dataclass(frozen=True)
class Entry:
    """One list entry: what it is, and why it is on the list."""

    category: str
    tier: str
    term: str
    reason: str
    lang: str = ""  # "" for the English lists, else the data/lang file it came from


class Match:
    """A list entry found at tokens[start:end]; a slotted class because every prompt makes many."""

    __slots__ = ("category", "end", "entry", "start", "tier")

    def __init__(self, entry: Entry, start: int, end: int) -> None:
        self.entry = entry
        self.start = start
        self.end = end
        self.category = entry.category
        self.tier = entry.tier

    def __repr__(self) -> str:
        return f"Match({self.entry.term!r}, {self.category}, {self.tier}, {self.start}:{self.end})"


def phrase_key(term: str) -> str:
    """A list term in the same normal form as prompt text."""
    return " ".join(re.findall(r"[a-z0-9]+", fold(term)))


def _fuzzy_target(key: str, entry: Entry) -> bool:
    if phrase_key(entry.term) != key or entry.lang:  # not phrases, plurals, or other languages' words
        return False
    if entry.tier == EXPLICIT and entry.category in ("sexual", "gore"):
        return True
    return entry.tier == SIGNAL and "sexualised" in entry.reason


class Lexicon:
    """Phrase table with a first-word index; immutable once built, so safe to share across threads."""

    def __init__(self, entries: Iterable[Entry], *, fuzzy: bool = False, script: Any = None,
                 ordinary: Mapping[str, frozenset[str]] | None = None,
                 gated: Mapping[str, frozenset[str]] | None = None,
                 negation: Mapping[str, Negation] | None = None) -> None:
        table: dict[str, list[Entry]] = {}
        near_misses: set[str] = set()
        stems: dict[str, list[tuple[str, Entry]]] = {}
        for entry in entries:
            key = phrase_key(entry.term)
            if not key:
                continue
            if entry.term.endswith("*") and " " not in key and len(key) >= 3:
                stems.setdefault(key[:3], []).append((key, entry))
                continue
            if entry.tier == NEAR_MISS:
                near_misses.add(key)
                continue
            forms = [key]
            if entry.tier not in (ALLOW, CONTEXT, PUBLIC_DOMAIN) and not key.endswith("s") and not entry.lang:
                forms.append(key + "s")
            words = key.split(" ")
            if entry.tier in (NAME, EXPLICIT) and 2 <= len(words) <= 3 and len(key) >= 9:
                forms.append("".join(words))  # written as one word: "sailormoon", "harrypotter"
            for form in forms:
                bucket = table.setdefault(form, [])
                if entry not in bucket:
                    bucket.append(entry)
        self.table = {k: tuple(v) for k, v in table.items()}
        # Stems of inflecting languages ("desnud*"), indexed by their first three letters.
        self.stems = {k: tuple(v) for k, v in stems.items()}
        # Substring matcher for scripts without spaces (moderation.languages.ScriptMatcher).
        self.script = script
        # Words that are ordinary in some language ("groot": nl): dropped when the prompt is in it.
        self.ordinary: Mapping[str, frozenset[str]] = ordinary or {}
        # Words that count only when the prompt is in their language ("kind" is German for child).
        self.gated: Mapping[str, frozenset[str]] = gated or {}
        # Per language ("" for English): the words that negate a term of that language's lists.
        self.negation: Mapping[str, Negation] = {"": ENGLISH_NEGATION, **(negation or {})}
        first: dict[str, int] = {}
        for key in self.table:
            words = key.split(" ")
            first[words[0]] = max(first.get(words[0], 0), len(words))
        self.first = first
        self.vocabulary = frozenset(k for k, es in self.table.items()
                                    if " " not in k and any(e.tier == EXPLICIT for e in es))
        self.fuzzy: Fuzzy[Entry] | None = None
        if fuzzy:
            targets = {k: tuple(e for e in es if _fuzzy_target(k, e)) for k, es in self.table.items()
                       if " " not in k and k.isalpha() and len(k) >= 4}
            targets = {k: es for k, es in targets.items() if es}
            self.fuzzy = Fuzzy(targets, known_words() | frozenset(near_misses) | frozenset(self.table))

    def __len__(self) -> int:
        return len(self.table)

    def scan(self, tokens: list[str], unspelt: frozenset[str] = frozenset()) -> list[Match]:
        """Entries found in ``tokens``; words in ``unspelt`` are never read as misspellings (a Cyrillic word's
        transliteration: "читает" is not a misspelt Latin brand)."""
        out: list[Match] = []
        first, table = self.first, self.table
        n_tok = len(tokens)
        for i, tok in enumerate(tokens):
            longest = first.get(tok)
            if not longest:
                continue
            for n in range(1, min(longest, n_tok - i) + 1):
                entries = table.get(" ".join(tokens[i:i + n]) if n > 1 else tok)
                if entries:
                    out.extend(Match(e, i, i + n) for e in entries)
        if self.stems:
            stems = self.stems
            for i, tok in enumerate(tokens):
                candidates = stems.get(tok[:3]) if len(tok) >= 3 else None
                if candidates:
                    for stem, e in candidates:
                        if tok.startswith(stem) and tok != stem + "s":
                            out.append(Match(e, i, i + 1))
        if self.fuzzy is not None:
            lookup, exclude = self.fuzzy.lookup, self.fuzzy.exclude
            for i, tok in enumerate(tokens):
                if len(tok) >= 4 and tok not in exclude and tok not in unspelt:
                    for e in lookup(tok):
                        out.append(Match(Entry(e.category, e.tier, e.term,
                                               f"{e.reason}, written \u201c{tok}\u201d"), i, i + 1))
        return out


def _load_file(name: str) -> list[Entry]:
    category, tiers = _FILES[name]
    raw = tomllib.loads(resources.files("moderation.data").joinpath(name).read_text("utf-8"))
    entries: list[Entry] = []
    ambiguous = {phrase_key(k) for k in raw.get("ambiguous", {})}
    for table, tier in tiers.items():
        for term, reason in raw.get(table, {}).items():
            if tier == NAME and phrase_key(term) in ambiguous:
                continue  # an ambiguous listing wins: it is the more careful one
            entries.append(Entry(category, tier, term, str(reason)))
    return entries


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    from moderation.languages import ScriptMatcher, language_data  # it imports this module for Entry

    entries: list[Entry] = []
    for name in _FILES:
        entries.extend(_load_file(name))
    other = language_data()
    entries.extend(other.entries)
    lex = Lexicon(entries, fuzzy=True, script=ScriptMatcher(other.script, other.negation), ordinary=other.ordinary,
                  gated=other.gated, negation=other.negation)
    log.debug("loaded %d list phrases", len(lex))
    return lex


@lru_cache(maxsize=256)
def guild_lexicon(terms: tuple[tuple[str, tuple[str, ...]], ...]) -> Lexicon:
    """A guild's extra terms, compiled once per distinct set."""
    return Lexicon(Entry(cat, EXPLICIT if cat in ("sexual", "gore") else NAME, t, "added by this server")
                   for cat, ts in terms for t in ts)


def minor_ages(text: str) -> list[str]:
    """Ages under 18 written any way ("12 year old", "12yo", "aged twelve", "niña de 12 años")."""
    return _age_finder().find(text)


@lru_cache(maxsize=1)
def _age_finder() -> AgeFinder:
    from moderation.languages import language_data  # it imports this module for Entry and the tiers

    data = language_data()
    return AgeFinder(data.age_units, data.age_numbers, data.age_before)


def _resolve_wildcards(norm: Normalized, vocabulary: frozenset[str]) -> str | None:
    """Rewrite "n*de" as "nude" when exactly the listed words fit; None when nothing fits."""
    text = norm.text
    changed = False
    for wc in norm.wildcards:
        pattern = re.compile("^" + ".{0,3}".join(re.escape(part) for part in wc.split("*")) + "$")
        hits = sorted(w for w in vocabulary if pattern.match(w))
        if hits:
            text = re.sub(rf"\b{re.escape(wc.replace('*', ''))}\b", hits[0], text)
            changed = True
    return text if changed else None


def _negatable(m: Match) -> bool:
    return m.tier in (EXPLICIT, SUGGESTIVE, INJURY) and m.category in ("sexual", "gore")


# Romaji words that the particle "no" follows ("12 sai no onna no ko nude", "onna no ko no nude"): there "no" is
# "of", not the English negator.
ROMAJI_BEFORE_NO = frozenset("""
sai onna ko otoko shoujo shounen joshi danshi gakusei kousei chuugakusei shougakusei joshikousei youjo
imouto otouto ane ani chan kun san sama sensei nen nensei watashi boku kanojo kare musume jk jc js
""".split())


def negated(m: Match, tokens: list[str], negation: Mapping[str, Negation], original: str | None = None) -> bool:
    """A sexual or gore term right after a negator of its language ("no nudity", "sin desnudos",
    "nicht nackt", "не голая"), or right before one ("çıplak değil"), in the same clause of ``original`` when
    given: the tokens lose the commas, and "10 sai no onna no ko, nude" (romaji "no" is a particle) or "no
    clothes, nude" negate nothing."""
    neg = negation.get(m.entry.lang) if _negatable(m) else None
    if neg is None:
        return False
    spans = [(j, m.end) for j in range(max(0, m.start - NEGATION_WINDOW), m.start) if tokens[j] in neg.before
             and not (tokens[j] == "no" and j > 0 and tokens[j - 1] in ROMAJI_BEFORE_NO)]
    spans += [(m.start, m.end + 1)] if any(t in neg.after for t in tokens[m.end:m.end + 1]) else []
    return any(original is None or _within_a_clause(" ".join(tokens[a:b]), original) for a, b in spans)


_CYRILLIC_WORD = re.compile(r"\w*[\u0400-\u04ff]\w*")


def cyrillic_words(original: str) -> frozenset[str]:
    """The prompt's Cyrillic words as their transliterated tokens: never read as misspelt Latin words."""
    if original.isascii():
        return frozenset()
    return frozenset(fold(w) for w in _CYRILLIC_WORD.findall(original))

# Where an allowlisted phrase cannot run on: list separators, not the brackets of prompt weights ("(pussy cat:1.2)").
_PHRASE_BREAK = re.compile(r"[,;.!?|\n，、。！？；]+")


def _within_a_clause(phrase: str, original: str) -> bool:
    """An allowlisted phrase of several words stands inside one clause of ``original``: "pussy cat" is a cat,
    "a woman's pussy, cat ears" is not (the tokens lose the comma)."""
    clauses = [c for c in _PHRASE_BREAK.split(original) if c.strip()]
    if len(clauses) < 2:
        return True
    # As written, in one clause (the common case, no normalising); else as the normaliser reads each clause.
    plain = [" ".join(re.findall(r"\w+", fold(c))) for c in clauses]
    if any(f" {phrase} " in f" {c} " for c in plain):
        return True
    return any(f" {phrase} " in f" {v} " for c in clauses for v in normalize(c).variants())


def _drop_allowed(matches: list[Match], tokens: list[str],
                  negation: Mapping[str, Negation] | None = None, original: str | None = None) -> list[Match]:
    negation = {"": ENGLISH_NEGATION} if negation is None else negation
    allowed = [(m.start, m.end) for m in matches if m.tier in (ALLOW, PUBLIC_DOMAIN)
               and (original is None or m.end - m.start < 2
                    or _within_a_clause(" ".join(tokens[m.start:m.end]), original))]
    # A span negated in the language of any entry found there is negated for all of them: "sem nudez" is
    # Portuguese, and the English list's "nudez" at the same place goes too.
    negated_spans = {(m.start, m.end) for m in matches if negated(m, tokens, negation, original)}
    kept: list[Match] = []
    for m in matches:
        if m.tier in (ALLOW, PUBLIC_DOMAIN):
            continue
        # an allowlisted phrase longer than the match, or an allowlisted word that a stem matched ("naaktslak",
        # a slug, under "naakt*")
        if any(a <= m.start and m.end <= b and ((b - a) > (m.end - m.start) or m.entry.term.endswith("*"))
               for a, b in allowed):
            continue
        if (m.start, m.end) in negated_spans and _negatable(m):
            continue
        kept.append(m)
    return kept


def scan(norm: Normalized, lexicon: Lexicon | None = None) -> list[Match]:
    """All list matches over every variant of ``norm``, allowlist and negations applied."""
    lex = lexicon or default_lexicon()
    variants = norm.variants()
    if norm.wildcards:
        resolved = _resolve_wildcards(norm, lex.vocabulary)
        if resolved:
            variants.append(resolved)
    seen: set[tuple[str, str, str]] = set()
    out: list[Match] = []
    unspelt = cyrillic_words(norm.original)
    for variant in variants:
        tokens = variant.split(" ")
        kept = _drop_allowed(lex.scan(tokens, unspelt), tokens, lex.negation, norm.original)
        kept = drop_benign_context(kept, tokens, norm.original)
        kept.extend(_injuries(kept))
        if lex.ordinary or lex.gated:
            kept = _drop_ordinary(kept, tokens, lex, norm.original)
        for m in kept:
            key = (m.entry.category, m.entry.tier, m.entry.term)
            if key not in seen:
                seen.add(key)
                out.append(m)
    if lex.script is not None and not norm.original.isascii():
        found = lex.script.scan(norm.original)
        out.extend(found)
        out.extend(_injuries(found))
    if any(m.category == "sexual" for m in out):
        out = drop_nudity_in_art_and_anatomy(out, norm.original)
    return drop_gore_in_benign_scenes(out, norm.original) if any(m.category == "gore" for m in out) else out


def _drop_ordinary(matches: list[Match], tokens: list[str], lex: Lexicon, original: str) -> list[Match]:
    """Route by language: drop matches on words that are ordinary in the prompt's language ("een groot
    huis"), and words that count only in their own language when the prompt is in another."""
    ordinary, gated = lex.ordinary, lex.gated
    suspects = [m for m in matches if " ".join(tokens[m.start:m.end]) in ordinary
                or (m.entry.lang and m.entry.term in gated)]
    if not suspects:
        return matches
    lang = identify(original)
    kept: list[Match] = []
    for m in matches:
        if m in suspects:
            word = " ".join(tokens[m.start:m.end])
            if lang is not None and lang in ordinary.get(word, ()):
                continue
            if m.entry.lang and m.entry.term in gated and lang not in gated[m.entry.term]:
                continue
        kept.append(m)
    return kept


def _injuries(matches: list[Match]) -> list[Match]:
    """An injury word with a body word next to it ("bloody stump", "limbs torn off") is gore; a sexual
    act with a body part ("flashing her breasts", "licking nipples") is sexual."""
    injuries = [m for m in matches if m.tier == INJURY]
    if not injuries:
        return []
    out: list[Match] = []
    for inj in injuries:
        for body in matches:
            if body.tier != BODY or body.category != inj.category:
                continue
            # Script matches count characters, and a particle and a space may sit between ("가슴을 보여주는").
            gap = 3 if inj.start >= SCRIPT_OFFSET else 0
            after = 0 <= body.start - inj.end <= 2 + gap  # "bloody stump", "charred human flesh"
            before = 0 <= inj.start - body.end <= 1 + gap  # "limbs torn off", "flesh charred"
            if after or before:
                first, second = (inj, body) if after else (body, inj)
                term = f"{first.entry.term} {second.entry.term}"
                what = "graphic injury" if inj.category == "gore" else "sexual act"
                reason = f"{what}: {inj.entry.reason} with {body.entry.reason}"
                out.append(Match(Entry(inj.category, EXPLICIT, term, reason), min(inj.start, body.start),
                                 max(inj.end, body.end)))
                break
    return out


def without_allowed(tokens: list[str], lexicon: Lexicon | None = None) -> str:
    """The text with allowlisted phrases cut out, for the semantic layer ("nude-colored dress")."""
    lex = lexicon or default_lexicon()
    drop: set[int] = set()
    for m in lex.scan(tokens):
        if m.tier in (ALLOW, PUBLIC_DOMAIN):
            drop.update(range(m.start, m.end))
    return " ".join(t for i, t in enumerate(tokens) if i not in drop)


def _written_as_a_name(term: str, original: str) -> bool:
    """A name of two words or more, every word capitalised in the prompt as a proper noun is ("Arda Güler
    çay bahçesinde": not "arda güler", Arda laughs; "Red Kit atının üstünde")."""
    words = fold(term.rstrip("*")).split(" ")
    if len(words) < 2 or not original:
        return False
    written = re.findall(r"\w+", original)
    folded = [fold(w) for w in written]
    for i in range(len(written) - len(words) + 1):
        if folded[i:i + len(words)] == words and all(w[:1].isupper() for w in written[i:i + len(words)]):
            return True
    return False


def confirmed_names(matches: list[Match], original: str = "") -> list[Match]:
    """Protected names that count: unambiguous ones, and ambiguous ones with a second signal (a context
    word, another name of their kind, or a full name written as one)."""
    names = [m for m in matches if m.tier == NAME]
    strong = {m.category for m in names}
    context = {m.category for m in matches if m.tier == CONTEXT}
    out = list(names)
    ambiguous = [m for m in matches if m.tier == AMBIGUOUS]
    # Two different ambiguous names of one category confirm each other ("Mickey and Minnie").
    paired = {m.category for m in ambiguous
              if any(o.category == m.category and o.entry.term != m.entry.term for o in ambiguous)}
    for m in ambiguous:
        if (m.category in strong or m.category in context or m.category in paired
                or (m.category in ("real-person", "copyright") and _written_as_a_name(m.entry.term, original))):
            out.append(m)
    return out


def guild_terms_key(extra: Mapping[str, Iterable[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(sorted((c, tuple(sorted(set(ts)))) for c, ts in extra.items() if ts))
