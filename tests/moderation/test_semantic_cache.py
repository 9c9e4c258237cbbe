"""The semantic layer remembers recent prompts' concept scores (rerolls send the same prompt again)."""

from __future__ import annotations

import numpy as np
import pytest

from moderation import semantic
from moderation.semantic import SemanticLayer


class CountingModel:
    """Stands in for MiniLM: a fixed unit vector per text, and a count of encode calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts: list[str], **_: object) -> np.ndarray:
        self.calls += 1
        vecs = np.array([[1.0, 0.0] if "gore" in t else [0.0, 1.0] for t in texts])
        return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def layer() -> tuple[SemanticLayer, CountingModel]:
    model = CountingModel()
    sem = SemanticLayer([], frozenset())
    sem.available = True
    sem._model = model
    sem._concepts = (["gore", "sexual"], np.array([[1.0, 0.0], [0.6, 0.8]]))
    sem._anchors = np.array([[0.0, 1.0]])
    return sem, model


def test_same_prompt_is_scored_once_with_the_same_answer() -> None:
    sem, model = layer()
    first = sem.concept_scores("graphic gore scene")
    first["gore"] = -1.0  # a caller changing its copy must not change what the next caller gets
    again = sem.concept_scores("graphic gore scene")
    assert model.calls == 1
    assert again == {"gore": 1.0, "sexual": 0.6}
    assert sem.concept_scores("a quiet lake") == {"gore": 0.0, "sexual": 0.0}
    assert model.calls == 2


def test_only_the_most_recent_prompts_are_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(semantic, "RECENT_KEPT", 3)
    sem, model = layer()
    for text in ["a", "b", "c", "a", "d"]:  # "a" used again, so "b" is the oldest when "d" comes
        sem.concept_scores(text)
    assert model.calls == 4
    sem.concept_scores("a")
    assert model.calls == 4
    sem.concept_scores("b")
    assert model.calls == 5


def test_loading_the_model_changes_no_process_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The MiniLM model loads by path: HF_HUB_OFFLINE set for the whole process would stop every later
    model download of that process (the image models' first use)."""
    import os

    if not semantic.model_installed():
        pytest.skip("the MiniLM wheel is not installed")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    assert SemanticLayer([], frozenset()).load()
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ
