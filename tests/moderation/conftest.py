"""Moderators shared by the moderation tests: one of each kind for the session (they load lists and models
once, and no test changes them; a test that patches one builds its own)."""

from __future__ import annotations

import pytest

from moderation import Moderator


@pytest.fixture(scope="session")
def rules() -> Moderator:
    """The rule layers alone."""
    return Moderator(semantic=False)


@pytest.fixture(scope="session")
def learned() -> Moderator:
    """The rule layers and the learned models (checked with ``semantic=True`` by default)."""
    return Moderator(semantic=False, learned=True)
