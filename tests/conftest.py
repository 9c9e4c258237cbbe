"""Suite-wide fixtures: tiny random-weight models (built once) and the fake Discord."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["tests.fakediscord.fixtures"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.toml naming tiny random-weight pipelines of every kind, written once per test session."""
    from inference.testing import make_tiny

    return make_tiny(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def single_file_models(tiny_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models.toml serving a tiny SD 1.5 and a tiny SDXL as A1111-layout .safetensors checkpoints
    (in its folder's ``checkpoints/``, which also serves as an ATELIER_MODELS_DIR)."""
    from tests.single_file import write_single_file_models

    return write_single_file_models(tiny_models.parent, tmp_path_factory.mktemp("single-file"))
