"""`atelier models make-tiny` (the README's first offline step) writes a tiny model of every kind the
registry knows, the ones /edit, /describe, /blend and style_ref need included, and the registry it
writes loads them all."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bot.__main__ import main
from inference.models import INPAINT_KINDS, KINDS, ModelRegistry


@pytest.mark.slow
def test_make_tiny_writes_a_model_of_every_kind(tmp_path: Path) -> None:
    assert main(["models", "make-tiny", str(tmp_path)]) == 0
    registry = ModelRegistry.load(tmp_path / "models.toml")
    kinds = {spec.kind for spec in registry.specs()}
    # The tagger's tiny model.onnx is written with onnx (the dev extra); the bot itself needs onnxruntime only.
    expected = set(KINDS) - (set() if importlib.util.find_spec("onnx") else {"tagger"})
    assert expected <= kinds, sorted(expected - kinds)
    assert set(INPAINT_KINDS) | {"caption", "ip-adapter"} <= kinds
    for spec in registry.specs():  # every entry's files are there
        source = Path(str(spec.source).split("/", 1)[0])
        assert (tmp_path / source).exists(), spec.name
