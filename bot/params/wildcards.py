"""Dynamic prompts: ``{red|blue|green} fox`` and ``__colors__`` wildcards, through the dynamicprompts library.

The job's seed picks the variant, so the same template and seed always give the same prompt: Rerun
(same seed) draws what was drawn, Reroll (new seed) may pick another. Wildcards are text files in
the owner's folder (ATELIER_WILDCARDS_DIR), ``colors.txt`` for ``__colors__`` and
``animals/cats.txt`` for ``__animals/cats__``, one value a line. The resolved text is the job's
prompt (what moderation judges and the PNG records); the template stays in the job's parameters
(``prompt_template``) so that a reroll resolves it again. No discord, no database.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bot.errors import InvalidOption

log = logging.getLogger(__name__)

_WILDCARD = re.compile(r"__([^_\s][^\s]*?)__")
_VARIANT = re.compile(r"\{[^{}]*\||\{\d*-?\d*\$\$")


def is_template(text: str) -> bool:
    """Whether the text holds dynamic-prompt syntax: a ``{a|b}`` variant or a ``__name__`` wildcard."""
    return bool(_VARIANT.search(text) or _WILDCARD.search(text))


def resolve(template: str, seed: int, folder: Path | None) -> str:
    """The prompt ``seed`` picks from ``template``; text without dynamic syntax comes back unchanged.

    Reads the wildcard files it names (call it off the event loop). A wildcard missing from the
    folder, or wildcards with no folder, are refused rather than drawn as the literal ``__name__``."""
    if not is_template(template):
        return template
    # Imported on first use: pyparsing is slow to load.
    from dynamicprompts.generators import RandomPromptGenerator
    from dynamicprompts.wildcards import WildcardManager

    names = _WILDCARD.findall(template)
    manager = WildcardManager(folder) if folder is not None else None
    if names:
        if manager is None:
            raise InvalidOption(f"`__{names[0]}__`: wildcards are not available on this bot (its owner has not set "
                                "ATELIER_WILDCARDS_DIR); write the words instead, or a variant like {red|blue}.")
        missing = [name for name in names if "*" not in name and not manager.get_values(name).items]
        if missing:
            raise InvalidOption(f"There is no wildcard `__{missing[0]}__`; ask the bot's owner which ones exist.")
    try:
        generator = RandomPromptGenerator(wildcard_manager=manager, seed=seed)
        resolved = generator.generate(template, 1)
    except Exception as exc:  # pyparsing's ParseException and the library's own errors
        log.debug("dynamic prompt %r did not parse: %s", template, exc)
        raise InvalidOption("The prompt's {…|…} variants do not parse: close every `{` with `}` and separate the "
                            "choices with `|`.") from None
    text = resolved[0].strip() if resolved else ""
    if not text:
        raise InvalidOption("The prompt's variants picked an empty prompt; give every choice some words.")
    return text
