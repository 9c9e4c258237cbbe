"""Folding text in other scripts (moderation/normalize.py): marks, format characters and look-alikes."""

from __future__ import annotations

import importlib
import unicodedata

import pytest

normalize_module = importlib.import_module("moderation.normalize")


def _by_loop(text: str) -> str:
    """What ``_fold_other`` did with a Python loop over the characters, before the regex passes."""
    text = unicodedata.normalize("NFKC", text)
    text = normalize_module._WORD.sub(normalize_module._fold_word, text)
    kept = [ch for ch in unicodedata.normalize("NFD", text)
            if not (unicodedata.category(ch) in ("Mn", "Me", "Cf", "Cc") and ch not in "\n\t")]
    out = "".join(kept)
    out = out if out.isascii() else normalize_module.anyascii(out)
    return out.lower().replace("'", "").replace("’", "")


@pytest.mark.parametrize("text", [
    "niña desnuda", "Ｆｕｌｌｗｉｄｔｈ", "nu\u200bde", "ｎｕｄｅ\u200d", "голая", "nаked",  # Cyrillic а
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f flag", "e\u0301\u20dd", "高1の生徒",
    "𝓷𝓾𝓭𝓮", "a\tb\nc\x07d",
])
def test_folding_drops_marks_and_format_characters_as_the_loop_did(text: str) -> None:
    assert normalize_module._fold_other.__wrapped__(text) == _by_loop(text)
