"""Fixtures for the inference tests: a registry and an engine over the tiny models.

The tiny models themselves come from the suite-wide ``tiny_models`` fixture (tests/conftest.py),
so the whole test session writes them once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_registry(tiny_models: Path):  # type: ignore[no-untyped-def]
    from inference.models import ModelRegistry

    return ModelRegistry.load(tiny_models)


@pytest.fixture(scope="session")
def engine(tiny_registry):  # type: ignore[no-untyped-def]
    """One CPU engine for the session: pipelines load once, as they would in a worker."""
    from inference.engine import Engine

    return Engine(tiny_registry, device="cpu")
