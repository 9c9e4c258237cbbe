"""Context rules for listed words that are benign beside certain other words (issue 18, item 4).

Two shapes the allowlist's fixed phrases cannot hold across word order and inflection:
- place names that are listed words ("the village of Fucking in Austria", "Condom dans le Gers"): a match
  on a place name written as a proper noun is dropped when the prompt is about the place;
- a nudity word beside a thing it describes in every language ("bare concrete", "hormigón desnudo",
  "голый землекоп", "çıplak beton", "tikus mondok telanjang"): dropped when its neighbour in the same
  clause is one of the things (walls, concrete, trees, the naked mole rat); "posing nude, concrete wall"
  keeps "nude" because the comma ends its clause;
- the loanword "nude" as a colour beside make-up or a colour word in every language ("batom nude", "szminka w
  odcieniu nude", "nude ruj tonları"), in a clause that names no person.
The words live in ``data/context.toml``.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from moderation.paraphrase import CLAUSE_BREAK

if TYPE_CHECKING:
    from moderation.rules import Match



@dataclass(frozen=True)
class _Words:
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def has(self, word: str) -> bool:
        return word in self.exact or word.startswith(self.prefixes)


def _words(keys: list[str]) -> _Words:
    return _Words(frozenset(k for k in keys if not k.endswith("*")),
                  tuple(k[:-1] for k in keys if k.endswith("*")))


@dataclass(frozen=True)
class ContextRules:
    places: frozenset[str]
    place_cues: _Words
    place_script: tuple[str, ...]
    bare: _Words
    food: _Words
    food_script: tuple[str, ...]
    art: _Words
    art_script: tuple[str, ...]
    people: _Words
    people_script: tuple[str, ...]
    colour_terms: frozenset[str]
    colour: _Words
    medical: _Words
    medical_script: tuple[str, ...]
    art_nudity: _Words
    art_nudity_clause: _Words
    art_nudity_script: tuple[str, ...]
    body_parts_medical: _Words
    body_parts_script: tuple[str, ...]
    animal_terms: frozenset[str]
    animal: _Words


@cache
def context_rules() -> ContextRules:
    data = tomllib.loads(resources.files("moderation.data").joinpath("context.toml").read_text("utf-8"))
    return ContextRules(frozenset(data["places"]), _words(data["place-cues"]["words"]),
                        tuple(data["place-cues"]["script"]), _words(data["bare"]["words"]),
                        _words(data["food"]["words"]), tuple(data["food"]["script"]),
                        _words(data["art"]["words"]), tuple(data["art"]["script"]),
                        _words(data["people"]["words"]), tuple(data["people"]["script"]),
                        frozenset(data["colour"]["terms"]), _words(data["colour"]["words"]),
                        _words(data["medical"]["words"]), tuple(data["medical"]["script"]),
                        _words(data["art-nudity"]["words"]), _words(data["art-nudity"]["clause_only"]),
                        tuple(data["art-nudity"]["script"]), _words(data["medical"]["body_parts"]),
                        tuple(data["medical"]["body_parts_script"]),
                        frozenset(data["animal"]["terms"]), _words(data["animal"]["words"]))


def _is_place(m: Match, tokens: list[str], original: str, rules: ContextRules) -> bool:
    term = m.entry.term
    if term not in rules.places:
        return False
    from moderation.normalize import fold

    # written as a proper noun, accents and all ("la Baïse")
    if not any(w[:1].isupper() and w[1:].islower() and fold(w) == term for w in re.findall(r"\w+", original)):
        return False
    return any(rules.place_cues.has(t) for t in tokens) or any(s in original for s in rules.place_script)


def without_places(original: str) -> str:
    """``original`` less the listed place names it is about ("le clocher de Condom vu depuis la Baïse"), for the
    learned prompt model, which would otherwise read the listed word in them as itself."""
    rules = context_rules()
    from moderation.normalize import fold, normalize

    names = [w for w in re.findall(r"\w+", original)
             if w[:1].isupper() and w[1:].islower() and fold(w) in rules.places]
    if not names:
        return original
    tokens = list(normalize(original).tokens)
    if not (any(rules.place_cues.has(t) for t in tokens) or any(s in original for s in rules.place_script)):
        return original
    return re.sub(r"\b(?:" + "|".join(map(re.escape, names)) + r")\b", " ", original)


def _describes_a_thing(m: Match, original: str, rules: ContextRules) -> bool:
    if m.category != "sexual" or m.end - m.start != 1:
        return False
    from moderation.normalize import normalize

    for clause in CLAUSE_BREAK.split(original):
        for part in (p for v in normalize(clause).variants() for p in v.split(" | ")):
            words = part.split(" ")
            for i, w in enumerate(words):
                if _hit(m, w) and any(rules.bare.has(n) for n in _beside(words, i)):
                    return True
    return False


def _a_colour(m: Match, original: str, rules: ContextRules) -> bool:
    """ "nude" next to a make-up or colour word (past a short word: "Wandfarbe in Nude"), in a clause naming no
    person ("rossetto nude")."""
    if m.category != "sexual" or m.end - m.start != 1 or m.entry.term not in rules.colour_terms:
        return False
    from moderation.normalize import normalize

    for clause in CLAUSE_BREAK.split(original):
        for part in (p for v in normalize(clause).variants() for p in v.split(" | ")):
            words = part.split(" ")
            if any(rules.people.has(w) for w in words) or any(s in clause for s in rules.people_script):
                continue
            for i, w in enumerate(words):
                if _hit(m, w) and any(rules.colour.has(n) for n in _beside(words, i)):
                    return True
    return False


def beside_a_thing(original: str) -> frozenset[str]:
    """The prompt's words (normal form) right beside a thing of the ``bare`` table in the same clause: the
    learned word model leaves them alone as the lists do ("çıplak beton", "soyulmuş muz")."""
    rules = context_rules()
    from moderation.normalize import normalize

    out: set[str] = set(animal_words(original))  # "Pfau ..., prächtiger Schwanz"
    for clause in CLAUSE_BREAK.split(original):
        for part in (p for v in normalize(clause).variants() for p in v.split(" | ")):
            words = part.split(" ")
            for i, w in enumerate(words):
                if rules.bare.has(w):
                    out.update(_beside(words, i))
            # "nude" as a colour ("batom nude"), as the lists read it (:func:`_a_colour`)
            if not any(rules.people.has(w) for w in words) and not any(s in clause for s in rules.people_script):
                for i, w in enumerate(words):
                    if w in rules.colour_terms and any(rules.colour.has(n) for n in _beside(words, i)):
                        out.add(w)
    return frozenset(out)


def _beside(words: list[str], i: int) -> list[str]:
    """The words next to words[i], and the ones past a short word between ("soyulmuş bir muz")."""
    out = words[max(0, i - 1):i] + words[i + 1:i + 2]
    if i >= 2 and len(words[i - 1]) <= 3:
        out.append(words[i - 2])
    if i + 2 < len(words) and len(words[i + 1]) <= 3:
        out.append(words[i + 2])
    return out


def benign_scene(clause: str) -> bool:
    """A clause about meat, fruit or a dish, or a statue or a museum, naming no person: its gore words are
    cooking ("derisiz tavuk butları", skinless chicken thighs; "kan portakalı", blood orange) or classical art
    ("a marble statue of a headless torso"). "A woman's body skinned like a chicken" names a person and stays
    gore. An anatomy plate or a medical textbook figure is benign whatever body it shows ("人体解剖図")."""
    from moderation.normalize import normalize

    rules = context_rules()
    words = {w for v in normalize(clause).variants() for p in v.split(" | ") for w in p.split(" ")}
    if any(rules.medical.has(w) for w in words) or any(s in clause for s in rules.medical_script):
        return True  # an anatomy plate or a textbook figure shows a body by definition
    if any(rules.people.has(w) for w in words) or any(s in clause for s in rules.people_script):
        return False
    return (any(rules.food.has(w) or rules.art.has(w) for w in words)
            or any(s in clause for s in rules.food_script + rules.art_script))


def drop_gore_in_benign_scenes(matches: list[Match], original: str) -> list[Match]:
    """``matches`` less the gore ones standing in a cooking or art clause (:func:`benign_scene`)."""
    if not _may_be_a_benign_scene(original):
        return matches
    return [m for m in matches if m.category != "gore"
            or not gore_word_in_benign_scene(m.entry.term.split(" ")[0].rstrip("*"), original)]


def _may_be_a_benign_scene(original: str) -> bool:
    """A cheap first look: some word of the prompt is a food, art or medical word (or the script has one)."""
    rules = context_rules()
    return _any_word(original, (rules.food, rules.art, rules.medical),
                     rules.food_script + rules.art_script + rules.medical_script)


def _any_word(original: str, tables: tuple[_Words, ...], script: tuple[str, ...]) -> bool:
    """Some word of ``original`` is in one of ``tables``, or (in other scripts) one of ``script`` is in it."""
    from moderation.normalize import fold

    if any(t.has(w) for w in re.findall(r"\w+", fold(original)) for t in tables):
        return True
    return not original.isascii() and any(s in original for s in script)


def gore_word_in_benign_scene(word: str, original: str) -> bool:
    """``word`` (a listed term's first word, or a word the learned layer read as gore) stands in a clause
    of ``original`` that :func:`benign_scene` calls cooking or art."""
    from moderation.normalize import fold

    stem = fold(word).strip()
    return any(stem and stem in fold(clause) and benign_scene(clause) for clause in CLAUSE_BREAK.split(original))


# What a sexual entry's reason says it is: nudity and body parts can be art or anatomy; acts, slang never.
_NUDITY = ("nudity", "exposed breasts", "exposed nipples")
_BODY_PARTS = ("genitals", "exposed breasts", "exposed nipples", "breasts or genitals")


def _clause_words(clause: str) -> set[str]:
    from moderation.normalize import normalize

    return {w for v in normalize(clause).variants() for p in v.split(" | ") for w in p.split(" ")}


def _names_a_person(words: set[str], clause: str, rules: ContextRules) -> bool:
    return any(rules.people.has(w) for w in words) or any(s in clause for s in rules.people_script)


def _art_clause(clause: str, rules: ContextRules, *, own: bool) -> bool:
    """``clause`` names no person and is about a statue, a sculpture or marble; ``own`` (the nudity word's own
    clause): a museum or classical nudes count too."""
    words = _clause_words(clause)
    if _names_a_person(words, clause, rules):
        return False
    return (any(rules.art_nudity.has(w) or (own and rules.art_nudity_clause.has(w)) for w in words)
            or any(s in clause for s in rules.art_nudity_script))


def _classical_art(parts: list[str], i: int, rules: ContextRules) -> bool:
    """Clause ``i`` is about a statue, a sculpture, marble, a museum or classical nudes, or, naming no person
    itself, stands beside a clause about a statue, a sculpture or marble."""
    if _names_a_person(_clause_words(parts[i]), parts[i], rules):
        return False
    return _art_clause(parts[i], rules, own=True) or any(
        _art_clause(parts[j], rules, own=False) for j in (i - 1, i + 1) if 0 <= j < len(parts))


def _medical_body_part(clause: str, rules: ContextRules) -> bool:
    return (any(rules.body_parts_medical.has(w) for w in _clause_words(clause))
            or any(s in clause for s in rules.body_parts_script))


def _may_be_art_or_anatomy(original: str, rules: ContextRules) -> bool:
    """A cheap first look: some word of the prompt is an art or anatomy word."""
    return _any_word(original, (rules.art_nudity, rules.art_nudity_clause, rules.body_parts_medical),
                     rules.art_nudity_script + rules.body_parts_script)


def drop_nudity_in_art_and_anatomy(matches: list[Match], original: str) -> list[Match]:
    """``matches`` less the nudity ones standing in classical art (a marble nude in a museum) and the body-part
    ones standing in a medical figure (an anatomy plate of the genitals); sexual acts and slang stay."""
    rules = context_rules()
    from moderation.normalize import fold

    if not _may_be_art_or_anatomy(original, rules):
        return matches
    parts = [p for p in CLAUSE_BREAK.split(original) if p.strip()]
    folded = [fold(p) for p in parts]

    def benign(m: Match) -> bool:
        reason = m.entry.reason
        nudity, part = reason.startswith(_NUDITY), reason.startswith(_BODY_PARTS) and "slang" not in reason
        if m.category != "sexual" or not (nudity or part):
            return False
        stem = fold(m.entry.term.split(" ")[0].rstrip("*")).strip()
        for i, clause in enumerate(folded):
            if stem and (m.entry.term in parts[i] or any(
                    w.startswith(stem) or (len(w) >= 4 and stem.startswith(w)) for w in re.findall(r"\w+", clause))):
                if (nudity and _classical_art(parts, i, rules)) or (part and _medical_body_part(parts[i], rules)):
                    return True
        return False

    return [m for m in matches if not benign(m)]


def sexual_word_in_classical_art(word: str, original: str) -> bool:
    """A word the learned word model read as sexual stands in a clause about a statue, a sculpture, marble or
    classical nudes (or a museum) that names no person ("klassieke naakten"); a neighbouring clause is not enough."""
    rules = context_rules()
    from moderation.normalize import fold

    stem = fold(word).strip()
    return any(stem and stem in fold(clause) and _art_clause(clause, rules, own=True)
               for clause in CLAUSE_BREAK.split(original))


def animal_words(original: str) -> frozenset[str]:
    """The prompt's slang words of the ``animal`` table that stand beside an animal: in a clause with an animal
    word, or next to such a clause, neither naming a person ("Pfau schlägt ein Rad, prächtiger Schwanz")."""
    rules = context_rules()
    parts = [p for p in CLAUSE_BREAK.split(original) if p.strip()]
    words = [_clause_words(p) for p in parts]
    person = [_names_a_person(w, p, rules) for w, p in zip(words, parts, strict=True)]
    out: set[str] = set()
    for i, ws in enumerate(words):
        found = ws & rules.animal_terms
        if not found or person[i]:
            continue
        if any(0 <= j < len(parts) and not person[j] and any(rules.animal.has(w) for w in words[j])
               for j in (i - 1, i, i + 1)):
            out |= found
    return frozenset(out)


def _hit(m: Match, word: str) -> bool:
    from moderation.normalize import fold

    term = m.entry.term
    stem = fold(term.rstrip("*")).strip()
    return word.startswith(stem) if term.endswith("*") else word == stem


def drop_benign_context(matches: list[Match], tokens: list[str], original: str) -> list[Match]:
    """``matches`` less those that the place or thing next to them makes benign."""
    rules = context_rules()
    if any(t in rules.animal_terms for t in tokens):
        animals = animal_words(original)
        matches = [m for m in matches if not (m.category == "sexual" and m.end - m.start == 1
                                              and tokens[m.start] in animals)]
    suspects = [m for m in matches if m.entry.term in rules.places
                or (m.category == "sexual" and m.end - m.start == 1
                    and (any(rules.bare.has(t) for t in tokens)
                         or (m.entry.term in rules.colour_terms and any(rules.colour.has(t) for t in tokens))))]
    if not suspects:
        return matches
    drop = {id(m) for m in suspects if _is_place(m, tokens, original, rules) or _describes_a_thing(m, original, rules)
            or _a_colour(m, original, rules)}
    return [m for m in matches if id(m) not in drop]
