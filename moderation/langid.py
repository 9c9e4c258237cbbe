"""Which language a prompt is written in, for the few words that mean different things per language.

py3langid ships its model inside the wheel (BSD-3-Clause) and classifies a short prompt quickly, but
it costs more than all the list lookups of a prompt together, so it is only asked when a list
match is an ordinary word in some language ("groot" is Dutch for big, "góry" Polish for mountains).
Restricted to the languages the lists cover, so a short prompt is not read as a language nobody writes
prompts in. Without the package every word keeps its listed meaning.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

LANGUAGES: tuple[str, ...] = ("en", "es", "pt", "fr", "de", "it", "nl", "pl", "tr", "id", "ru", "ja", "ko", "zh")
_lock = threading.Lock()
_identifier: list[Any] = []


def available() -> bool:
    return importlib.util.find_spec("py3langid") is not None


def _model() -> Any:
    if not _identifier:
        with _lock:
            if not _identifier:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier

                ident = LanguageIdentifier.from_model_file(MODEL_FILE)
                ident.set_languages(list(LANGUAGES))
                _identifier.append(ident)
    return _identifier[0]


@lru_cache(maxsize=1024)
def identify(text: str) -> str | None:
    """The prompt's language code, or None when the identifier is not installed or fails."""
    if not available() or not text.strip():
        return None
    try:
        lang, _score = _model().classify(text)
    except Exception as exc:  # a broken install must not take moderation down
        log.warning("language identification failed: %s", exc)
        return None
    return str(lang)
