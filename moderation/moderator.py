"""The one entry point: a prompt (and negative prompt, channel flag, guild policy) in, a Verdict out.

Layers run in order of cost: normalisation, the lists (plus the guild's own terms), the minors
combination rule, then the semantic model (skipped when the lists already blocked). Everything is
sync and CPU-bound; the bot runs it off the event loop.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import cached_property

from moderation import fuzzy, rules
from moderation.context import (
    benign_scene,
    beside_a_thing,
    gore_word_in_benign_scene,
    sexual_word_in_classical_art,
    without_places,
)
from moderation.langid import identify
from moderation.languages import cjk_minor_ages
from moderation.learned import LearnedLayer
from moderation.normalize import Normalized, normalize
from moderation.paraphrase import CJK, CLAUSE_BREAK, ParaphraseModel, Reading
from moderation.policy import DEFAULT_POLICY, SEVERITY, Action, Policy, Verdict
from moderation.rules import ADULT, EXPLICIT, SIGNAL, SUGGESTIVE, Match
from moderation.semantic import SemanticLayer
from moderation.sentence import SentenceModel, SentenceReading

log = logging.getLogger(__name__)



def benign_beside(prompt: str, clause: str) -> bool:
    """A reading's text is a cooking, fruit, art or anatomy scene (``benign_scene``), alone or beside a
    neighbouring clause of the prompt ("peeling an orange, skin peeled off"; "a man, skin peeled off" names
    a person and stays)."""
    if benign_scene(clause):
        return True
    key = " ".join(re.findall(r"\w+", clause.lower()))
    parts = [p for p in CLAUSE_BREAK.split(prompt) if p.strip()]
    for i, part in enumerate(parts):
        if " ".join(re.findall(r"\w+", part.lower())) == key:
            if any(benign_scene(f"{parts[j]} {part}" if j < i else f"{part} {parts[j]}")
                   for j in (i - 1, i + 1) if 0 <= j < len(parts)):
                return True
    return False


def without_cues(text: str, cues: list[str]) -> str:
    """The text without the age cues found in it (matched case- and separator-insensitively: "12 year old"
    finds "12-year-old"); a cue written otherwise than the lists' normal form stays."""
    for cue in cues:
        words = [re.escape(w) for w in cue.split()]
        if words:
            text = re.sub(r"[\s\-]*".join(words), " ", text, flags=re.IGNORECASE)
    return re.sub(r"\s{2,}", " ", text).strip()


def without_cue_clauses(text: str, cues: list[str]) -> str:
    """The text without the clauses that hold an age cue ("a 7 year old blowing out candles, <an adult scene>"
    -> the adult scene): beside a child in an ordinary scene, a sexual clause reads harmless to models that
    learnt children only in ordinary scenes. "" when no clause is left or none held a cue."""
    parts = [p.strip() for p in CLAUSE_BREAK.split(text) if p.strip()]
    kept = [p for p in parts if without_cues(p, cues) == re.sub(r"\s{2,}", " ", p)]
    return ", ".join(kept) if 0 < len(kept) < len(parts) else ""





_HOW: dict[str, str] = {
    "sexual": "Rephrase without nudity or sexual content (or use an age-restricted channel, if this server has opted in).",
    "gore": "Rephrase without graphic injury or mutilation (or use an age-restricted channel, if this server has opted in).",
    "minors": "Images of children or teenagers must never be sexual; this is not allowed anywhere and moderators have been notified.",
    "real-person": "Describe a fictional person instead of naming a real one.",
    "copyright": "Describe an original character or setting instead to avoid the notice.",
    "living-artist": "Describe the style itself (medium, palette, mood) instead of naming a living artist.",
    "trademark": "Leave out the brand or logo to avoid the notice.",
}
_WHAT: dict[str, str] = {
    "sexual": "asks for sexual content",
    "gore": "asks for graphic gore",
    "real-person": "names a real person",
    "copyright": "names a copyrighted character or franchise",
    "living-artist": "names a living artist (or one whose work is still in copyright)",
    "trademark": "names a trademark",
}
# Minors terms that are sexualised on their own ("lolicon", "jailbait").
_SEXUALISED_MINOR = "sexualised"


@dataclass(frozen=True)
class Finding:
    category: str
    term: str
    reason: str
    layer: str
    score: float | None = None
    tentative: bool = False  # the learned model is unsure: flagged (a notice), never refused for it
    whole: bool = False  # ``reason`` already says what the prompt does (the learned prompt model's reading)


@dataclass(frozen=True)
class RulesScan:
    """The rule layers' reading of one prompt under one policy: what a later ``check`` of the same
    prompt continues from (the model layers), instead of normalising and scanning it again."""

    prompt: str
    negative: str
    policy: Policy
    norm: Normalized
    matches: tuple[Match, ...]
    findings: tuple[Finding, ...]

    def reads(self, prompt: str, negative: str, policy: Policy) -> bool:
        return (self.prompt, self.negative, self.policy) == (prompt, negative, policy)


class Moderator:
    """Holds the loaded lists and the lazily loaded model; share one instance across threads."""

    def __init__(self, *, semantic: bool = True, learned: bool | None = None) -> None:
        """``semantic=False`` is the rules only; ``learned`` defaults to the same choice."""
        self.lexicon = rules.default_lexicon()
        wanted = semantic if learned is None else learned
        self.learned = LearnedLayer() if wanted else None
        self.paraphrase = ParaphraseModel() if wanted else None
        self.sentence = SentenceModel() if wanted else None
        self._known: frozenset[str] | None = None
        self._listed: frozenset[str] | None = None
        self._semantic: SemanticLayer | None = None
        self._semantic_lock = threading.Lock()
        self._semantic_wanted = semantic
        # MiniLM's concept descriptions (English only, ~10 ms a prompt) are replaced by the learned prompt
        # model where it ships; the model still confirms misspelt names.
        self.concepts = self.paraphrase is None or not self.paraphrase.available

    @property
    def semantic(self) -> SemanticLayer | None:
        if not self._semantic_wanted:
            return None
        if self._semantic is None:
            with self._semantic_lock:
                if self._semantic is None:
                    # Misspellings are looked for among the English lists' names only: a name of a language's
                    # own list sits one letter away from that many ordinary words of the other thirteen
                    # ("coração" from ColaCao, "Schwein" from Schlein, "romarin" from Romário). Words of any
                    # list, in any language, are never misspelt names ("fillette" is not Gillette).
                    names = [e for es in self.lexicon.table.values() for e in es if not e.lang]
                    self._semantic = SemanticLayer(names, self.known_words)
        return self._semantic

    @property
    def known_words(self) -> frozenset[str]:
        """Words the learned layer leaves alone: everything the lists or the English vocabulary know."""
        if self._known is None:
            self._known = frozenset(fuzzy.known_words() | self.listed_words)
        return self._known

    @property
    def listed_words(self) -> frozenset[str]:
        """The lists' single words (any category, the allowlist too)."""
        if self._listed is None:
            self._listed = frozenset(k for k in self.lexicon.table if " " not in k)
        return self._listed

    @property
    def semantic_available(self) -> bool:
        """True when the model package is installed and (if loaded) loaded fine."""
        layer = self.semantic
        return bool(layer and layer.available)

    def warmup(self) -> bool:
        """Load the model now (call at start-up, off the event loop); returns semantic availability."""
        if self.sentence is not None:
            self.sentence.load()
        layer = self.semantic
        ok = bool(layer and layer.load())
        if ok:
            self.check("warm up", semantic=True)
        return ok

    def scan(self, prompt: str, negative: str = "", *, policy: Policy | None = None) -> RulesScan:
        """The rule layers alone: the prompt normalised and matched against the lists (and the
        guild's own terms)."""
        policy = policy or DEFAULT_POLICY
        norm = normalize(prompt)
        matches = rules.scan(norm, self.lexicon)
        findings = self._list_findings(matches, prompt)
        if policy.extra_terms:
            guild = rules.guild_lexicon(rules.guild_terms_key(policy.extra_terms))
            for m in rules.scan(norm, guild):
                findings.append(Finding(m.category, m.entry.term, m.entry.reason, "guild-terms"))
        return RulesScan(prompt, negative, policy, norm, tuple(matches), tuple(findings))

    def check(self, prompt: str, negative: str = "", *, nsfw_channel: bool = False,
              policy: Policy | None = None, semantic: bool = True, scanned: RulesScan | None = None) -> Verdict:
        """Every layer's verdict on a prompt. ``scanned``: the rule layers' earlier reading of this
        prompt (``scan``), used when it read the same text under the same policy."""
        policy = policy or DEFAULT_POLICY
        if scanned is None or not scanned.reads(prompt, negative, policy):
            scanned = self.scan(prompt, negative, policy=policy)
        norm, matches, findings = scanned.norm, list(scanned.matches), list(scanned.findings)

        sexual_signal = [m.entry.term for m in matches if m.category == "sexual"
                         and m.tier in (EXPLICIT, SUGGESTIVE)]
        sexual_signal += [m.entry.term for m in matches if m.tier == SIGNAL and _SEXUALISED_MINOR in m.entry.reason]
        minor_signal = [m.entry.term for m in matches if m.tier == SIGNAL]
        minor_signal += rules.minor_ages(norm.text)
        if not norm.original.isascii():
            minor_signal += cjk_minor_ages(norm.original)
        explicit = any(f.category == "sexual" for f in findings)

        layer = self.semantic if semantic else None
        already_blocked = any(policy.action_for(f.category, nsfw_channel=nsfw_channel) is Action.BLOCK
                              for f in findings)
        if semantic and self.learned is not None and self.learned.available and not explicit:
            hits = self.learned.check(prompt, self.known_words)
            if hits:  # words inside allowlisted phrases ("çıplak ağaç", a bare tree) don't count either
                tokens = list(norm.tokens)
                allowed = set(tokens) - set(rules.without_allowed(tokens, self.lexicon).split())
                allowed |= beside_a_thing(prompt)  # "çıplak beton", "soyulmuş muz"
                hits = [h for h in hits if rules.phrase_key(h.word) not in allowed
                        and not self._negated_word(h.word, norm)
                        and not (h.category == "gore" and gore_word_in_benign_scene(h.word, prompt))
                        and not (h.category == "sexual" and sexual_word_in_classical_art(h.word, prompt))]
            for hit in hits:
                findings.append(Finding(hit.category, hit.word,
                                        f"reads as {hit.category} (probability {hit.probability:.2f})",
                                        "learned", hit.probability))
                if hit.category == "sexual":
                    sexual_signal.append(hit.word)
                    explicit = True
        if semantic and not explicit and not any(f.category == "gore" for f in findings):
            reading = self._paraphrase(prompt, child=minor_signal)
            if reading is not None and reading.category == "gore" and benign_beside(prompt, reading.clause):
                reading = None  # skinless chicken thighs in a pan, a marble statue of a headless torso
            if reading is not None:
                read = (f"{reading.category} content: \u201c{reading.clause}\u201d (learned model, probability "
                        f"{reading.probability:.2f}")
                findings.append(Finding(
                    reading.category, reading.clause,
                    f"reads as {read})" if reading.certain else f"may read as {read}; the model is unsure, so this is "
                                                                 "a notice)",
                    "learned", reading.probability, tentative=not reading.certain, whole=True))
                if reading.category == "sexual":
                    sexual_signal.append(reading.clause)
                    explicit = True
                already_blocked = already_blocked or (reading.certain and policy.action_for(
                    reading.category, nsfw_channel=nsfw_channel) is Action.BLOCK)
        if semantic and not any(f.category in ("sexual", "gore") and not f.tentative for f in findings):
            meant = self._sentence(prompt, child=minor_signal)
            if meant is not None:
                findings.append(Finding(
                    meant.category, meant.clause,
                    f"reads as {meant.category} content: \u201c{meant.clause}\u201d (sentence model, probability "
                    f"{meant.probability:.2f}, confirmed by the prompt model)", "learned",
                    meant.probability, whole=True))
                if meant.category == "sexual":
                    sexual_signal.append(meant.clause)
                    explicit = True
                already_blocked = already_blocked or policy.action_for(
                    meant.category, nsfw_channel=nsfw_channel) is Action.BLOCK
        if layer is not None and layer.available and not already_blocked:
            # a Cyrillic word's transliteration is not a misspelt Latin name ("читает" is not "Chitato")
            unspelt = rules.cyrillic_words(prompt)
            tokens = [t if t not in unspelt else "" for t in norm.tokens]
            for hit in layer.check(rules.without_allowed(list(norm.tokens), self.lexicon), tokens,
                                   concepts=self.concepts):
                findings.append(Finding(hit.category, hit.term, hit.reason, "semantic", hit.score))
                if hit.category == "sexual":
                    sexual_signal.append(hit.term)
                    explicit = True

        if negative and explicit and not minor_signal:
            neg = rules.scan(normalize(negative), self.lexicon)
            adult = [m.entry.term for m in neg if m.tier == ADULT]
            if adult:
                minor_signal.append(f"negative prompt excludes \u201c{adult[0]}\u201d")
        if sexual_signal and minor_signal:
            findings.insert(0, Finding(
                "minors", f"{minor_signal[0]} + {sexual_signal[0]}",
                f"a minor (\u201c{minor_signal[0]}\u201d) with sexual content (\u201c{sexual_signal[0]}\u201d)",
                "combination"))
        return self._verdict(findings, norm.text, policy, nsfw_channel)

    def _negated_word(self, word: str, norm: Normalized) -> bool:
        """A word the learned layer read as harmful, right after a negator (or before a trailing one) of
        English or of the prompt's language ("keine Nacktheit", "çıplak değil"), as the lists treat theirs."""
        key, tokens = rules.phrase_key(word), list(norm.tokens)
        if key not in tokens:
            return False
        i = tokens.index(key)
        negation = [self.lexicon.negation[""]]
        lang = identify(norm.original)
        if lang in self.lexicon.negation:
            negation.append(self.lexicon.negation[lang])
        window = tokens[max(0, i - rules.NEGATION_WINDOW):i]
        return any(t in n.before for n in negation for t in window) or any(
            t in n.after for n in negation for t in tokens[i + 1:i + 2])

    def _paraphrase(self, prompt: str, *, child: list[str] | None = None) -> Reading | None:
        """The prompt model's reading; a clause holding an allowlisted phrase ("a butcher cutting a side of
        beef in half", "a naked mole rat") or a negated term is the lists' to judge and is not read. ``child``: the
        prompt's age cues: one sexual word the lists don't know is enough ("middle school kid stripping for the
        camera"), and the prompt is also read without the clauses holding a cue (``without_cue_clauses``)."""
        model = self.paraphrase
        if model is None or not model.available:
            return None
        text = without_places(prompt)
        reading = model.read(text, self._lists_judge, listed=self.listed_words if child else None)
        rest = without_cue_clauses(text, child) if child and reading is None else ""
        if rest:
            reading = model.read(rest, self._lists_judge, listed=self.listed_words, alone=True)
            reading = reading if reading is not None and reading.category == "sexual" else None
        return reading

    def _lists_judge(self, clause: str) -> bool:
        """A clause the lists vouch for or read as negated ("no nudity", "没有裸体"): theirs to judge, not the
        learned models'."""
        return self._vouched(clause) or self._negated_clause(clause)

    def _sentence(self, prompt: str, *, child: list[str] | None = None) -> SentenceReading | None:
        """The sentence model's reading, where the prompt model leans the same way on the same text. Clauses
        the lists vouch for and place names are not read (as for the prompt model); a gore reading of a food,
        art or anatomy scene doesn't count. ``child``: the prompt's age cues; the prompt is also read without
        them (the models learnt children only in ordinary scenes, so an age cue pulls any reading towards
        benign); a sexual reading of that text is what the minors rule needs."""
        model = self.sentence
        if model is None or not model.available:
            return None
        second = self.paraphrase
        allowed = self._lists_judge
        if second is None or not second.available or not second.load():
            return None  # the sentence model never reads alone: it extends the prompt model's reach
        text = without_places(prompt)
        reading = model.read(text, allowed, second=second.probabilities)
        for rest, alone in (((without_cues(text, child), False), (without_cue_clauses(text, child), True))
                            if child and reading is None else ()):
            if reading is None and rest:  # beside a child, a clause's sexual reading counts alone
                reading = model.read(rest, allowed, second=second.probabilities, alone=alone)
                reading = reading if reading is not None and reading.category == "sexual" else None
        if reading is not None and benign_beside(prompt, reading.clause):
            return None  # meat, fruit, a statue, an anatomy plate: "kippendijen zonder vel" is no body
        return reading

    def _vouched(self, clause: str) -> bool:
        """A clause holding an allowlisted phrase ("a naked mole rat", "peeling an orange")."""
        tokens = list(normalize(clause).tokens)
        if rules.without_allowed(tokens, self.lexicon) != " ".join(tokens):
            return True
        script = self.lexicon.script
        return script is not None and not clause.isascii() and script.vouched(clause)

    def _harmful_terms(self, text: str) -> bool:
        return any(m.category in ("sexual", "gore") and m.tier in (EXPLICIT, SUGGESTIVE)
                   for m in rules.scan(normalize(text), self.lexicon))

    def _negated_clause(self, clause: str) -> bool:
        """A clause whose sexual or gore term the lists read as negated ("no nudity", "sin desnudos", "没有裸体",
        "裸ではない"): a term is found once the clause's negators are taken out, and none with them in. The
        sentence model reads meaning and misses negation ("a woman on the beach, no nudity" lands beside
        "nude woman on the beach"), so such a clause is the lists' to judge, as a vouched one is."""
        if self._harmful_terms(clause):
            return False
        words = self._negators
        kept = [w for w in clause.split() if rules.phrase_key(w) not in words and w.lower() not in words]
        stripped = " ".join(kept)
        for negator in self._cjk_negators:
            stripped = stripped.replace(negator, " ")
        return stripped != clause and self._harmful_terms(stripped)

    @cached_property
    def _negators(self) -> frozenset[str]:
        return frozenset(w for n in self.lexicon.negation.values() for w in n.before | n.after)

    @cached_property
    def _cjk_negators(self) -> tuple[str, ...]:
        return tuple(sorted((w for w in self._negators if CJK.search(w)), key=len, reverse=True))

    @staticmethod
    def _list_findings(matches: list[Match], original: str = "") -> list[Finding]:
        out = [Finding(m.category, m.entry.term, m.entry.reason, "rules")
               for m in matches if m.tier == EXPLICIT and m.category in ("sexual", "gore")]
        out += [Finding(m.category, m.entry.term, m.entry.reason, "rules") for m in rules.confirmed_names(matches, original)]
        return out

    @staticmethod
    def _verdict(findings: list[Finding], text: str, policy: Policy, nsfw_channel: bool) -> Verdict:
        acted = [(_action(policy, f, nsfw_channel), f) for f in findings]
        acted = [(a, f) for a, f in acted if a is not Action.ALLOW]
        matched = list(dict.fromkeys(f.term for f in findings))
        if not acted:
            return Verdict(Action.ALLOW, [], "", None, None, text, matched, False)
        acted.sort(key=lambda af: (-af[0].rank, SEVERITY[af[1].category]))
        action, top = acted[0]
        categories = sorted({f.category for _, f in acted}, key=SEVERITY.__getitem__)
        return Verdict(
            action=action,
            categories=categories,
            reason=_reason(action, top),
            layer=top.layer,
            score=top.score,
            normalized=text,
            matched=matched,
            report=top.category == "minors",
        )


def _action(policy: Policy, f: Finding, nsfw_channel: bool) -> Action:
    action = policy.action_for(f.category, nsfw_channel=nsfw_channel)
    return Action.WARN if f.tentative and action is Action.BLOCK else action


def _reason(action: Action, f: Finding) -> str:
    verb = "Blocked" if action is Action.BLOCK else "Notice"
    if f.category == "minors":
        return f"{verb} (minors): the prompt combines {f.reason}. {_HOW['minors']}"
    if f.layer == "semantic" and f.category in ("sexual", "gore"):
        what = f"reads as {f.category} content (similarity {f.score:.2f})"
    elif f.whole:
        what = f.reason
    elif f.layer == "learned":
        what = f"uses \u201c{f.term}\u201d, which {f.reason}"
    elif f.layer == "guild-terms":
        what = f"uses \u201c{f.term}\u201d, a term this server added to its {f.category} list"
    else:
        what = f"{_WHAT[f.category]}: \u201c{f.term}\u201d ({f.reason})"
    return f"{verb} ({f.category}): the prompt {what}. {_HOW[f.category]}"


_default: Moderator | None = None
_default_lock = threading.Lock()


def default_moderator() -> Moderator:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Moderator()
    return _default


def check_prompt(prompt: str, negative: str = "", *, nsfw_channel: bool = False,
                 policy: Policy | None = None, semantic: bool = True) -> Verdict:
    """Moderate one prompt with the shared Moderator (see Moderator.check)."""
    return default_moderator().check(prompt, negative, nsfw_channel=nsfw_channel, policy=policy,
                                     semantic=semantic)
