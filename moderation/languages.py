"""Lists in other languages and scripts: ``data/lang/<code>.toml``, one file per language.

Each file has the same tables: ``sexual`` (refuses alone), ``suggestive`` (a sexual signal for the
minors rule), ``minors`` (a minor signal), ``gore``, ``copyright``, ``real-person``, ``trademark``
(names as they are written in that language), ``allow`` (benign phrases that contain a listed word),
``ordinary`` (words of the language that are listed terms elsewhere: "groot", "góry"), and ``ages``
(words for "years old", words for "age" that come before the number ("umur sepuluh"), and the number
words, for the age rule). A key ending in ``*`` is a stem
that matches any word starting with it, for languages that inflect ("desnud*", "голы*").

How each script is matched:
- Latin-script languages are folded like English (accents dropped) and join the main word table.
- Cyrillic keys are transliterated into the common Latin spellings (й -> y/i/j, х -> kh/h, ...), so one
  list catches Cyrillic prompts (normalisation adds a transliterated variant) and Latin
  transliteration alike.
- Japanese (kana, kanji), Chinese and Korean have no spaces between words: their keys are matched as
  substrings of the prompt (NFKC, hiragana read as katakana), with the allowlist applied by span.
"""

from __future__ import annotations

import itertools
import logging
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from moderation.rules import (
    ALLOW,
    AMBIGUOUS,
    BODY,
    CONTEXT,
    EXPLICIT,
    INJURY,
    NAME,
    SCRIPT_OFFSET,
    SIGNAL,
    SUGGESTIVE,
    Entry,
    Match,
    Negation,
)

log = logging.getLogger(__name__)

LANGUAGE_NAMES: dict[str, str] = {
    "es": "Spanish", "pt": "Portuguese", "fr": "French", "de": "German", "it": "Italian", "nl": "Dutch",
    "pl": "Polish", "tr": "Turkish", "id": "Indonesian", "ru": "Russian", "ja": "Japanese", "ko": "Korean",
    "zh": "Chinese",
}
# table -> (category, tier)
TABLES: dict[str, tuple[str, str]] = {
    "sexual": ("sexual", EXPLICIT),
    "suggestive": ("sexual", SUGGESTIVE),
    "minors": ("minors", SIGNAL),
    # Minor signals that are other words in other languages: counted only when the prompt is in this one.
    "minors-in-language": ("minors", SIGNAL),
    "gore": ("gore", EXPLICIT),
    # Pairs that count when next to each other, like the English [act]/[part] and [injury]/[body]
    # tables: "mostrando los pechos", "tête tranchée", "切られた首".
    "sexual-act": ("sexual", INJURY),
    "sexual-part": ("sexual", BODY),
    "gore-injury": ("gore", INJURY),
    "gore-body": ("gore", BODY),
    "copyright": ("copyright", NAME),
    "real-person": ("real-person", NAME),
    "trademark": ("trademark", NAME),
    "allow": ("allow", ALLOW),
    # Second signals for names that are also ordinary words ("Nike" next to a word for shoes).
    "trademark-context": ("trademark", CONTEXT),
    "real-person-ambiguous": ("real-person", AMBIGUOUS),
    "real-person-context": ("real-person", CONTEXT),
    "trademark-ambiguous": ("trademark", AMBIGUOUS),
    "copyright-context": ("copyright", CONTEXT),
    "copyright-ambiguous": ("copyright", AMBIGUOUS),
}

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\u1100-\u11ff\u3130-\u318f\uf900-\ufaff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# Each Cyrillic letter's Latin spellings, the first being anyascii's (what a Cyrillic prompt becomes).
_CYR_LATIN: dict[str, tuple[str, ...]] = {
    "а": ("a",), "б": ("b",), "в": ("v",), "г": ("g",), "д": ("d",), "е": ("e",), "ё": ("e", "yo"),
    "ж": ("zh", "j"), "з": ("z",), "и": ("i",), "й": ("y", "i", "j"), "к": ("k",), "л": ("l",),
    "м": ("m",), "н": ("n",), "о": ("o",), "п": ("p",), "р": ("r",), "с": ("s",), "т": ("t",),
    "у": ("u",), "ф": ("f",), "х": ("kh", "h"), "ц": ("ts", "c"), "ч": ("ch",), "ш": ("sh",),
    "щ": ("shch", "sch"), "ъ": ("",), "ы": ("y", "i"), "ь": ("",), "э": ("e",), "ю": ("yu", "iu", "ju"),
    "я": ("ya", "ia", "ja"),
}
_MAX_SPELLINGS = 24


@dataclass(frozen=True)
class LanguageData:
    entries: tuple[Entry, ...]  # Latin-script (and transliterated) entries for the main word table
    script: tuple[Entry, ...]  # CJK entries, matched as substrings
    ordinary: dict[str, frozenset[str]]  # folded word -> languages in which it is an ordinary word
    gated: dict[str, frozenset[str]]  # term -> the languages a prompt must be in for it to count
    age_units: tuple[str, ...]  # "anos", "jahre", "lat" ...
    age_numbers: dict[str, int]  # "diez" -> 10 ...
    age_before: tuple[str, ...]  # words for "age" before a number: "umur", "usia"
    negation: dict[str, Negation]  # language -> its negators (folded words; as written in CJK scripts)


def script_text(text: str) -> str:
    """The form CJK keys and prompts are compared in: NFKC (half-width kana, full-width letters), lowercase."""
    return unicodedata.normalize("NFKC", text).lower()


def kana_forms(term: str) -> list[str]:
    """A kana term as written and in the other kana ("はらわた" and "ハラワタ")."""
    hira = "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in term)
    kata = "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in term)
    return list(dict.fromkeys((term, hira, kata)))


def _katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30fc"


def cyrillic_spellings(term: str) -> list[str]:
    """Latin spellings of a Cyrillic term: anyascii's first, then the common variants."""
    parts = [_CYR_LATIN.get(ch, (ch,)) for ch in term.lower()]
    out: list[str] = []
    for combo in itertools.product(*parts):
        out.append("".join(combo))
        if len(out) >= _MAX_SPELLINGS:
            break
    return out


def _entries_for(lang: str, table: str, term: str, reason: str) -> tuple[list[Entry], list[Entry]]:
    category, tier = TABLES[table]
    why = f"{reason} ({LANGUAGE_NAMES.get(lang, lang)})"
    if _CJK.search(term):
        return [], [Entry(category, tier, form, why, lang) for form in kana_forms(script_text(term))]
    if _CYRILLIC.search(term):
        spellings = cyrillic_spellings(term)
        if tier == ALLOW:
            # Also as the prompt's other variants read it: words made only of Latin look-alikes are folded as
            # disguised Latin there ("по вызову" -> "no bbieoby"), and an allowlisted phrase must hold in every
            # variant a match is found in ("девочки по вызову", call girls, are no children).
            from moderation.normalize import normalize

            spellings.extend(part for v in normalize(term).variants() for part in v.split(" | "))
        return [Entry(category, tier, s, why, lang) for s in dict.fromkeys(spellings)], []
    return [Entry(category, tier, term, why, lang)], []


def _load(lang: str, raw: dict[str, Any]
          ) -> tuple[list[Entry], list[Entry], dict[str, set[str]], list[str], dict[str, int], dict[str, str],
                     list[str]]:
    latin: list[Entry] = []
    script: list[Entry] = []
    gated: dict[str, str] = {}
    for table in TABLES:
        for term, reason in raw.get(table, {}).items():
            a, b = _entries_for(lang, table, str(term), str(reason))
            latin.extend(a)
            script.extend(b)
            if table == "minors-in-language":
                gated.update({e.term: lang for e in a})
    ordinary: dict[str, set[str]] = {}
    for word in raw.get("ordinary", {}):
        ordinary.setdefault(word, set()).add(lang)
    ages = raw.get("ages", {})
    units = [str(u) for u in ages.get("units", [])]
    numbers = {str(k): int(v) for k, v in ages.get("numbers", {}).items()}
    before = [str(b) for b in ages.get("before", [])]
    return latin, script, ordinary, units, numbers, gated, before


@lru_cache(maxsize=1)
def language_data() -> LanguageData:
    """Every data/lang/*.toml file, loaded once."""
    from moderation.rules import phrase_key  # the same folding as the English lists

    latin: list[Entry] = []
    script: list[Entry] = []
    ordinary: dict[str, set[str]] = {}
    units: list[str] = []
    numbers: dict[str, int] = {}
    before: list[str] = []
    gated: dict[str, set[str]] = {}
    negation: dict[str, Negation] = {}
    folder = resources.files("moderation.data").joinpath("lang")
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".toml"):
            continue
        lang = item.name.removesuffix(".toml")
        try:
            raw = tomllib.loads(item.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"moderation list data/lang/{item.name} is not valid TOML: {exc}") from exc
        a, b, o, u, n, g, bf = _load(lang, raw)
        neg = raw.get("negation", {})
        fold_word = script_text if lang in ("ja", "ko", "zh") else phrase_key
        negation[lang] = Negation(frozenset(fold_word(str(w)) for w in neg.get("before", [])),
                                  frozenset(fold_word(str(w)) for w in neg.get("after", [])))
        for term, code in g.items():
            gated.setdefault(term, set()).add(code)
        latin.extend(a)
        script.extend(b)
        for word, langs in o.items():
            ordinary.setdefault(phrase_key(word), set()).update(langs)
        units.extend(phrase_key(x) for x in u)
        before.extend(phrase_key(x) for x in bf)
        numbers.update({phrase_key(k): v for k, v in n.items()})
    log.debug("loaded %d entries in other languages, %d in CJK scripts", len(latin), len(script))
    return LanguageData(tuple(latin), tuple(script), {k: frozenset(v) for k, v in ordinary.items()},
                        {k: frozenset(v) for k, v in gated.items()},
                        tuple(dict.fromkeys(u for u in units if u)), numbers, tuple(dict.fromkeys(b for b in before if b)),
                        negation)


class ScriptMatcher:
    """Substring matching for scripts written without spaces; one set probe per character position."""

    def __init__(self, entries: tuple[Entry, ...], negation: dict[str, Negation] | None = None) -> None:
        # Kanji and kana are shared by Japanese and Chinese lists: every CJK language's negators count.
        cjk = [n for lang, n in (negation or {}).items() if lang in ("ja", "ko", "zh")]
        self.before = tuple(sorted({w for n in cjk for w in n.before}, key=len, reverse=True))
        self.after = tuple(sorted({w for n in cjk for w in n.after}, key=len, reverse=True))
        table: dict[str, list[Entry]] = {}
        for entry in entries:
            table.setdefault(entry.term, []).append(entry)
        self.table = {k: tuple(v) for k, v in table.items()}
        self.allowed = tuple(k for k, v in self.table.items() if v[0].tier == ALLOW)
        self.first = frozenset(k[0] for k in self.table)
        self.longest = max((len(k) for k in self.table), default=0)

    def scan(self, original: str) -> list[Match]:
        if not _CJK.search(original):
            return []
        text = script_text(original)
        spans: list[tuple[int, int, tuple[Entry, ...]]] = []
        table, size = self.table, len(text)
        for i, ch in enumerate(text):
            if ch not in self.first:
                continue
            for n in range(1, min(self.longest, size - i) + 1):
                entries = table.get(text[i:i + n])
                if entries and not self._inside_katakana_word(text, i, i + n):
                    spans.append((i, i + n, entries))
        allowed = [(a, b) for a, b, es in spans if es[0].tier == ALLOW]
        out: list[Match] = []
        for a, b, entries in spans:
            if entries[0].tier == ALLOW:
                continue
            if any(x <= a and b <= y and (y - x) > (b - a) for x, y in allowed):
                continue
            out.extend(Match(e, SCRIPT_OFFSET + a, SCRIPT_OFFSET + b) for e in entries
                       if not self._negated(e, text, a, b))
        return out

    def vouched(self, original: str) -> bool:
        """``original`` holds an allowlisted phrase of a script without spaces ("長時間露出", "장노출")."""
        if not _CJK.search(original):
            return False
        text = script_text(original)
        return any(k in text for k in self.allowed)

    def _negated(self, entry: Entry, text: str, start: int, end: int) -> bool:
        """A sexual or gore term next to a CJK negator ("没有裸体", "裸ではない", "노출 없음"): right before
        it or with one character (a space, a particle) between, or likewise after it."""
        if entry.tier not in (EXPLICIT, SUGGESTIVE, INJURY) or entry.category not in ("sexual", "gore"):
            return False
        before = text[max(0, start - 8):start].rstrip()
        after = text[end:end + 8].lstrip()
        return (any(before.endswith(w) or before[:-1].rstrip().endswith(w) for w in self.before)
                or any(after.startswith(w) or after[1:].lstrip().startswith(w) for w in self.after))

    @staticmethod
    def _inside_katakana_word(text: str, start: int, end: int) -> bool:
        """A katakana key that is part of a longer katakana word ("グロ" in "グローブ", "エッチ" in "エッチング")."""
        if _katakana(text[end - 1]) and end < len(text) and _katakana(text[end]):
            return True
        return _katakana(text[start]) and start > 0 and _katakana(text[start - 1])


_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HANGUL = "\uac00-\ud7af"
# An age gap, not an age: "3歳年上の彼女", "5살 연상", "大5岁", "比我小3岁", "相差10岁", "12歳以上".
_AGE_GAP_AFTER = r"(?!\s*(?:年上|年下|上の|下の|差|違い|離れ|若|以上|연상|연하|차이|터울|위|아래|어린|많|더|씩))"
_AGE_GAP_BEFORE = r"(?<![0-9一二三四五六七八九十两兩大小差长長])(?<!大了)(?<!小了)(?<!差了)"
_CJK_AGE = re.compile(_AGE_GAP_BEFORE + r"(\d{1,3}|[一二三四五六七八九十两兩]{1,3})\s*(?:歳|才|岁|歲|살|세)"
                      + _AGE_GAP_AFTER)
# Korean native numbers ("일곱 살", "열두살") and Sino-Korean tens ("십오 세"), as a word of their own: not
# "야한 살결", "네 살결" (your skin), "살짝", "살인마", "같이 살고".
_KO_AGE = re.compile(r"(?<![" + _HANGUL + r"])(?:열(?:한|두|세|네|다섯|여섯|일곱)?|한|두|세|네|다섯|여섯|일곱|여덟|아홉)"
                     r"\s?살(?![결짝갗집색코균림벌점쾡금구해상아았고며면게래까]|얼음|며시|포시|인[마범자사])"
                     + _AGE_GAP_AFTER
                     + r"|(?<![" + _HANGUL + r"])십[일이삼사오육칠]?\s?세(?![상계기대금력트련])" + _AGE_GAP_AFTER)
# Teens as a round figure: "十几岁", "十多岁", "十来岁" (not "二十几岁").
_ZH_TEENS = re.compile(r"(?<![一二三四五六七八九两兩])十[几幾多来來]\s*[岁歲]")
# School years written short: 小5, 中2, 高1 (Japanese), 高三/中一 (Chinese), 초6, 중2, 고3 (Korean): a word of their
# own, followed by a particle, a person or the end ("高1の娘", "中2女子", "高三的学生"), so not "身高160",
# "其中1个", "部屋の中一人で", "中二病", "小一時間".
_CJK_GRADE = re.compile(
    r"(?<![" + _HAN + r"0-9])(?:小[1-6四五六]|中[1-3一二三]|高[1-3一二三])"
    r"(?=$|[\s、,，。.!！?？・の生女男で娘だにく程頃的了]|から|ぐらい|学生|新生|那)"
    r"|(?<![" + _HANGUL + r"0-9])(?:초[1-6]|중[1-3]|고[1-3])(?![0-9])")
_CJK_DIGITS = {c: i for i, c in enumerate("〇一二三四五六七八九")}
_CJK_DIGITS.update({"两": 2, "兩": 2})


def _cjk_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CJK_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CJK_DIGITS.get(ones[:1], 0) if ones else 0)
    # "七八岁" (seven or eight): the first figure
    return _CJK_DIGITS.get(text[:1], 99)


def cjk_minor_ages(original: str) -> list[str]:
    """Ages under 18 written with a CJK age counter ("10歳", "13살", "十二岁")."""
    if not _CJK.search(original):
        return []
    text = unicodedata.normalize("NFKC", original)
    found = [m.group(0) for m in _CJK_AGE.finditer(text) if _cjk_number(m.group(1)) < 18]
    found += [m.group(0) for m in _KO_AGE.finditer(text)]
    found += [m.group(0) for m in _ZH_TEENS.finditer(text)]
    found += [m.group(0) for m in _CJK_GRADE.finditer(text)]
    return found
