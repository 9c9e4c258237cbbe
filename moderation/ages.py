"""Ages under 18, in any of the languages the lists cover: "12 year old", "aged twelve", "looks about
ten", "just started fourth grade", "niña de 12 años", "zwölfjährig", "10 лет", "10歳".

An age alone is harmless; the moderator pairs it with a sexual signal (the minors rule). Units and
number words of other languages come from the ``[ages]`` table of each ``data/lang`` file.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)

WORD_NUMBERS: dict[str, int] = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}
_ORDINALS = ("first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
             r"1st|2nd|3rd|[4-9]th|1[0-2]th")
_NOT_AGE = (r"(?! ?(?:cm|mm|m|ft|feet|foot|meters?|metres?|inch|inches|in|kg|lbs?|pounds|percent|dollars|"
            r"euros|minutes|hours|days|weeks|months|times|stories|floors|k|x|am|pm|oclock|seconds|miles|km|"
            r"people|men|women|cats|dogs|birds))")


def _english_patterns(num: str) -> list[re.Pattern[str]]:
    return [
        re.compile(r"\b" + num + r" ?(?:yo|y o|yrs? old|years? old|years? of age|yrs?|year)\b"),
        re.compile(r"\b(?:aged?|age of|ages) " + num + r"\b"),
        re.compile(r"\b" + num + r"(?:yo|yr|yrs)\b"),
        re.compile(r"\b(?:" + "|".join(k for k, v in WORD_NUMBERS.items() if v < 18) + r") ?year\b"),
        # "she's 15", "just turned 14", "looks about ten", "maybe nine": a bare number said of a person
        re.compile(r"\b(?:shes|hes|she is|he is|im|i am|is only|only|just turned|turned|turning|looks|looking|"
                   r"look|looks about|looks around|looks like|about|around|maybe|perhaps|roughly|barely) "
                   r"(?:about |around |like |maybe )?" + num + r"\b" + _NOT_AGE),
    ]


# School years that only children are in: "fourth grade", "4th grader", "grade 5", "year 6 pupil".
_SCHOOL = re.compile(r"\b(?:" + _ORDINALS + r") grad(?:e|er|ers)\b|\bgrade (?:[1-9]|1[0-2]) (?:student|pupil|girl|boy|kid)"
                     r"|\bgrade (?:[1-9]|one|two|three|four|five|six|seven|eight|nine)\b")


# Words around "N years" that make it a span of time, not a person's age (Spanish, Portuguese, French).
_NOT_A_SPAN_BEFORE = r"(?<!\bhace )(?<!\bil y a )(?<!\bdepuis )(?<!\bpendant )(?<!\bdurante )(?<!\bdans )"
# ("atrás de" is "behind" and "después de" "after": "una niña de 10 años después de clase" is an age.)
_NOT_A_SPAN_AFTER = (r"(?! ?(?:atras(?! d[aeo])|plus tard|mas tarde|mais tarde|"
                     r"de (?:experiencia|carrera|carreira|casados|casada|casado|matrimonio|casamento|mariage))\b)")

# A number-built adjective said of a thing, not a person: "zehnjähriges Jubiläum", "tienjarig bestaan",
# "dwuletnia gwarancja", "pięcioletnie doświadczenie" (the noun right after it, by its first letters).
_NOT_A_PERSON = (r"(?! (?:jubil|bestehen|bestaan|garanti|gwarancj|vertrag|contract|kontrakt|umow|ausbildung|opleiding|"
                 r"erfahrung|ervaring|doswiadcz|laufzeit|looptijd|studium|studien|studia|amtszeit|kadencj|plan|staz|rocznic|whisk|"
                 r"tradi|przerw|pauze|pause|wyrok|haft|okres|histori|geschicht|geschiedenis|gerijpt|dienst|"
                 r"bedrijf|firm|projekt|project|program|gefangnis|gevangenis|wiezieni|esperienz|experien)[a-z]*\b)")


# "a girl of eleven", "een jongen van tien", "ein Mädchen von zwölf": a child word, "of", a number.
_CHILD = ("girl|boy|kid|child|daughter|son|meisje|jongen|kind|madchen|junge|nina|nino|chica|chico|menina|menino|"
          "garota|garoto|fillette|fille|garcon|enfant|bambina|bambino|ragazzina|ragazzino|bimba|bimbo")


def _alternation(words: Iterable[str]) -> str:
    """A regex matching any of ``words``, factored as a trie ("on|one|onze" -> "on(?:e|ze)?"): Python's
    engine tries a plain alternation's branches one by one at every position, and the number words and
    units of fourteen languages are hundreds of branches; the trie reads each letter once."""
    trie: dict[str, dict] = {}
    for word in set(words):
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        branches = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body  # greedy: the longest word first, as before

    return "(?:" + build(trie) + ")"


class AgeFinder:
    """Compiled once from the English rules plus every language's units and number words."""

    def __init__(self, units: Iterable[str] = (), numbers: Mapping[str, int] | None = None,
                 before: Iterable[str] = ()) -> None:
        self.numbers = dict(WORD_NUMBERS)
        self.numbers.update(numbers or {})
        words = sorted(self.numbers, key=len, reverse=True)
        num = r"(\d{1,3}|" + _alternation(words) + r")"
        english = r"(\d{1,3}|" + _alternation(WORD_NUMBERS) + r")"
        # English phrasing with English numbers only: "she is on the bed" is no age ("on" is 10 in Turkish)
        self.patterns = _english_patterns(english)
        self.patterns.append(re.compile(r"\b(?:" + _CHILD + r") (?:of|van|von|de|di|da) " + num + r"\b(?! ?(?:cm|mm|ft|feet|foot|kg|lbs?|pounds|meters?|metres?)\b)"))
        unit_list = sorted(set(units), key=len, reverse=True)
        if unit_list:
            alt = _alternation(unit_list)
            # "12 anos", "de diez anos", "8 jahre alt", "zwolfjahrig(es)", "8-jahrige", "10sai"
            # not a span of time: "hace 10 años", "il y a dix ans", "10 anos atrás", "dix ans plus tard"; not a
            # thing's age ("zehnjähriges Jubiläum")
            self.patterns.append(re.compile(r"\b" + _NOT_A_SPAN_BEFORE + num + r" ?(?:" + alt + r")\b"
                                            + _NOT_A_SPAN_AFTER + _NOT_A_PERSON))
            self.patterns.append(re.compile(r"\b" + num + r" ?(?:jahrig|jarig|letn|letni|latk|sai)[a-z]*\b"
                                            + _NOT_A_PERSON))
            # Russian case endings after digits: "12-ти летняя", "12-тилетняя", "3-х лет", "7-ми лет"
            self.patterns.append(re.compile(r"\b(\d{1,2}) (?:ti|kh|x|h|mi) ?(?:let|letn[a-z]*|letk[a-z]*)\b"))
        # Russian nouns in "-летка" ("двенадцатилетка", "12-летка"): only from 11 up in words, since
        # "пятилетка" is the five-year plan and "семилетка", "десятилетка" schools.
        self.nouns = re.compile(r"\b" + num + r" ?letk[a-z]*\b") if unit_list else None
        # Words for "age" written before the number: "umur sepuluh", "usia 12", "edad de 12"
        before_list = sorted(set(before), key=len, reverse=True)
        if before_list:
            alt = "|".join(re.escape(b) for b in before_list)
            self.patterns.append(re.compile(r"\b(?:" + alt + r") (?:sekitar |kira kira |about |like )?" + num + r"\b"
                                            r"(?! ?(?:cm|mm|m|kg|km|persen|menit|jam|hari|bulan|minggu)\b)"))
        # Cheap pre-check: other languages' number words only count next to a unit, so the units stand in
        # for them ("on", "un", "een" are everywhere).
        self.hint = re.compile(r"\d|year|yo\b|aged?\b|grade|teen|jahrig|jarig|latk|latek|letn|letk|sai\b|"
                               r"\b(?:" + _CHILD + r") (?:of|van|von|de|di|da) |"
                               + _alternation(WORD_NUMBERS)
                               + (r"|\b" + _alternation(unit_list) + r"\b" if unit_list else "")
                               + (r"|\b" + _alternation(before_list) + r"\b" if before_list else ""))

    def value(self, num: str) -> int:
        return int(num) if num.isdigit() else self.numbers.get(num, 99)

    def find(self, text: str) -> list[str]:
        """Ages under 18 (and child-only school years) in folded text."""
        found: list[str] = []
        if not self.hint.search(text):
            return found
        for pattern in self.patterns:
            for m in pattern.finditer(text):
                num = m.group(1) if m.groups() else None
                if num is None or self.value(num) < 18:
                    found.append(m.group(0))
        if self.nouns is not None and "letk" in text:
            for m in self.nouns.finditer(text):
                num = m.group(1)
                if (num.isdigit() or self.value(num) >= 11) and self.value(num) < 18:
                    found.append(m.group(0))
        found.extend(m.group(0) for m in _SCHOOL.finditer(text))
        return found


ENGLISH = AgeFinder()
