"""The LoRAs a job may name: the operator's folder (ATELIER_LORA_DIR, names as listed there) and the
member LoRA space (names ``member:<member id>/<file>``, as bot/services/training.py hands them out
after checking that the member may use that LoRA on that server).

Only the standard library: the engine builds it, the bot reads MEMBER_PREFIX.
"""

from __future__ import annotations

from pathlib import Path

from inference import lora

MEMBER_PREFIX = "member:"


class Libraries:
    """``lora.prepare``'s library over both folders: each name is looked up in the index of its own
    folder only (never joined onto a path), so neither can reach the other or anything outside."""

    def __init__(self, operator: Path | str | None, members: Path | str | None) -> None:
        self.operator = lora.LoraLibrary(operator) if operator else None
        self.members = lora.LoraLibrary(members) if members else None

    @property
    def root(self) -> Path | None:
        """The operator's folder (as LoraLibrary.root), or None when only members' LoRAs are served."""
        return self.operator.root if self.operator is not None else None

    def names(self) -> list[str]:
        return self.operator.names() if self.operator is not None else []

    def resolve(self, name: str) -> lora.LoraFile:
        if name.startswith(MEMBER_PREFIX):
            if self.members is None:
                raise lora.LoraError("Members' own LoRAs are not available on this worker.")
            found = self.members.resolve(name.removeprefix(MEMBER_PREFIX))
            return lora.LoraFile(name, found.path)
        if self.operator is None:
            raise lora.LoraError("LoRAs are turned off on this worker: ATELIER_LORA_DIR is not set.")
        return self.operator.resolve(name)


def libraries(operator: Path | str | None, members: Path | str | None) -> Libraries | None:
    """None when neither folder is set (LoRAs off), as the engine had before member LoRAs."""
    return Libraries(operator, members) if operator or members else None
