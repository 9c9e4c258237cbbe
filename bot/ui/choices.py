"""Autocomplete for the commands' `model` options: the installed models of one family that match
what the member has typed so far, at most the 25 Discord shows."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from discord import app_commands

from inference.models import ModelSpec


def model_choices(specs: Iterable[ModelSpec], current: str, *, label: Callable[[ModelSpec], str] = lambda s: s.name,
                  match_kind: bool = False) -> list[app_commands.Choice[str]]:
    """Models whose name (or, with ``match_kind``, kind) contains ``current``, shown as ``label``."""
    typed = current.lower().strip()
    return [app_commands.Choice(name=label(spec)[:100], value=spec.name) for spec in specs
            if typed in spec.name.lower() or (match_kind and typed in spec.kind.lower())][:25]
