"""LoRAs from the operator's folder (ATELIER_LORA_DIR): listing, safe name resolution, base-model
checks, A1111/Civitai hashes, and applying them to one job only.

Names are what members type: the path of a ``.safetensors`` file relative to the folder, without the
extension (``styles/watercolor``). A name is only ever looked up in the index of files found inside
the folder, never joined onto a path, so ``../`` and absolute paths cannot reach anything else; a
symlink whose target lies outside the folder is not listed either.

Both layouts members download load through diffusers' ``load_lora_weights``: diffusers/PEFT keys
(``unet.….lora_A.weight``) and kohya/Civitai keys (``lora_unet_…​.lora_down.weight`` + ``.alpha``).

Recently used LoRAs stay loaded on the device (inference/adapters.py), and on a compiled UNet they
are swapped into fixed slots (inference/hotswap.py); ``applied`` below is the load-for-one-job path.

Only the standard library at import: the bot imports this module to list and check names.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.checkpoints import file_sha256, read_header
from inference.limits import MAX_LORA_WEIGHT, MIN_LORA_WEIGHT
from inference.listing import ListedFolder
from inference.models import SD_KINDS, RequestRefused

log = logging.getLogger(__name__)

SUFFIX = ".safetensors"
# The kinds whose pipelines take LoRAs here (diffusers' SD and SDXL loaders).
LORA_KINDS = frozenset(SD_KINDS)
# The weight a LoRA applies at when the member names none: the strength its author trained it at.
DEFAULT_WEIGHT = 1.0
# How long a folder listing is reused (autocomplete asks on every keystroke).
LIST_TTL = 10.0
# Cross-attention width of a UNet -> the family members know it by.
FAMILIES = {768: "SD 1.5", 1024: "SD 2.x", 2048: "SDXL"}


class LoraError(RequestRefused):
    """A LoRA cannot be used for this job; the message says which one and why."""


class UnknownLora(LoraError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else " Pick one from the list as you type."
        super().__init__(f"Unknown LoRA {name!r}.{hint}")
        self.name = name


@dataclass(frozen=True, slots=True)
class LoraFile:
    name: str
    path: Path


class LoraLibrary:
    """The LoRA files of one folder, re-listed at most every ``ttl`` seconds."""

    def __init__(self, root: Path | str, *, ttl: float = LIST_TTL) -> None:
        self.root = Path(root)
        self._listing = ListedFolder(self.root, scan, ttl=ttl)

    def names(self) -> list[str]:
        """Every LoRA name, sorted case-insensitively."""
        return self._listing.names()

    def search(self, text: str, limit: int = 25) -> list[str]:
        """Names containing ``text`` (case-insensitive), those starting with it first."""
        needle = text.strip().lower()
        names = [n for n in self.names() if needle in n.lower()]
        names.sort(key=lambda n: (not n.lower().startswith(needle) and not n.lower().split("/")[-1].startswith(needle)))
        return names[:limit]

    def resolve(self, name: str) -> LoraFile:
        """The file behind a listed name; UnknownLora for anything else (including any path trick)."""
        path = self._listing.find(name)
        if path is None:
            needle = name.strip().lower().removesuffix(SUFFIX)
            close = [n for n in self.names() if needle and (needle in n.lower() or n.lower().split("/")[-1] in needle)]
            raise UnknownLora(name, close[:5])
        if not _inside(path, self.root):  # replaced by an escaping symlink since it was listed
            raise UnknownLora(name, [])
        return LoraFile(name, path)



@functools.lru_cache(maxsize=8)
def library(root: str) -> LoraLibrary:
    """One shared library per folder, so the bot's listings are cached across commands."""
    return LoraLibrary(root)


def scan(root: Path) -> dict[str, Path]:
    """name -> file for every ``.safetensors`` under ``root`` (recursively) that really lies inside it."""
    index: dict[str, Path] = {}
    if not root.is_dir():
        log.warning("LoRA folder %s does not exist", root)
        return index
    base = root.resolve()
    for folder, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for filename in files:
            if not filename.lower().endswith(SUFFIX) or filename.startswith("."):
                continue
            path = Path(folder) / filename
            if not _inside(path, base) or not path.is_file():
                continue
            name = path.relative_to(base).as_posix()[: -len(SUFFIX)]
            index[name] = path
    return index


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except OSError:
        return False


def check_weight(weight: float) -> float:
    if not MIN_LORA_WEIGHT <= weight <= MAX_LORA_WEIGHT:
        raise LoraError(f"LoRA weight must be {MIN_LORA_WEIGHT:g}-{MAX_LORA_WEIGHT:g}; you asked for {weight:g}")
    return float(weight)


# ----- what a file says about itself (safetensors header: 8-byte length, then JSON) -----


def family_hint(header: dict[str, Any]) -> str | None:
    """"sdxl" or "sd1" when the file says which base it was trained on, else None.

    From kohya's metadata (``ss_base_model_version``, ``modelspec.architecture``), an SDXL second
    text encoder's keys, kohya's SD 1.x text-encoder prefix, or a known cross-attention width.
    Cheap enough for the bot to check before a job is queued; the engine checks the exact width.
    """
    meta = header.get("__metadata__") or {}
    base = str(meta.get("ss_base_model_version", "")).lower()
    arch = str(meta.get("modelspec.architecture", "")).lower()
    if base.startswith("sdxl") or arch.startswith("stable-diffusion-xl"):
        return "sdxl"
    if base.startswith("sd_v1") or arch.startswith("stable-diffusion-v1"):
        return "sd1"
    keys = [key for key in header if key != "__metadata__"]
    if any(key.startswith(("lora_te2_", "text_encoder_2.", "te2.")) for key in keys):
        return "sdxl"
    width = cross_attention_width(header)
    if width == 2048:
        return "sdxl"
    if width == 768 or any(key.startswith("lora_te_") for key in keys):
        return "sd1"
    return None


def kind_family(kind: str) -> str | None:
    return "sdxl" if kind.startswith("sdxl") else "sd1" if kind == "sd15" else None


FAMILY_NAMES = {"sdxl": "SDXL", "sd1": "SD 1.5"}


def cross_attention_width(header: dict[str, Any]) -> int | None:
    """The text width the LoRA's UNet cross-attention expects (768 SD 1.5, 1024 SD 2, 2048 SDXL), if it says.

    Read from the input side of a cross-attention key projection (``attn2.to_k``), which every UNet
    LoRA layout has when it trains cross-attention.
    """
    for key, info in header.items():
        if key == "__metadata__" or not isinstance(info, dict):
            continue
        lowered = key.lower()
        if "attn2" not in lowered or "to_k" not in lowered or "text" in lowered:
            continue
        if any(marker in lowered for marker in ("lora_down", "lora_a.", "lora.down", "_lora.down")):
            shape = info.get("shape") or []
            if len(shape) == 2:
                return int(shape[1])
    return None


def family_label(width: int) -> str:
    known = FAMILIES.get(width)
    return f"{known} (cross-attention width {width})" if known else f"a base model with cross-attention width {width}"


def check_family(lora: LoraFile, header: dict[str, Any], *, model: str, model_width: int) -> None:
    """Refuse a LoRA made for another base model family, when the file shows which it was made for."""
    width = cross_attention_width(header)
    if width is not None and width != model_width:
        raise LoraError(f"LoRA {lora.name!r} was made for {family_label(width)}; {model} is "
                        f"{family_label(model_width)}. Choose a LoRA made for that family, or another model.")


def short_hash(path: Path) -> str:
    """A1111's LoRA hash ("Lora hashes" in PNG parameters, Civitai's AutoV3): the first 12 hex digits
    of the SHA-256 of the tensor data after the safetensors header."""
    return file_sha256(path, after_header=True)[:12]


# ----- one job's LoRAs on a pipeline -----


@dataclass(frozen=True, slots=True)
class JobLora:
    """A resolved, checked LoRA for one job."""

    file: LoraFile
    weight: float

    @property
    def name(self) -> str:
        return self.file.name


def prepare(library: LoraLibrary | None, requested: list[tuple[str, float]] | list[list[Any]], *, kind: str,
            model: str, model_width: int) -> list[JobLora]:
    """Resolve and check a request's [name, weight] pairs before anything is loaded."""
    if not requested:
        return []
    if library is None:
        raise LoraError("LoRAs are turned off on this worker: ATELIER_LORA_DIR is not set.")
    if kind not in LORA_KINDS:
        raise LoraError(f"{model} ({kind}) does not take LoRAs; use an SD 1.5 or SDXL model.")
    chosen: list[JobLora] = []
    for name, weight in requested:
        file = library.resolve(str(name))
        if any(other.name == file.name for other in chosen):
            raise LoraError(f"LoRA {file.name!r} is named twice")
        try:
            header = read_header(file.path)
        except (OSError, ValueError) as exc:  # the parser's words go to the log, not to the member
            log.warning("LoRA %r is not readable: %s: %s", file.name, type(exc).__name__, exc)
            raise LoraError(f"LoRA {file.name!r} is not a readable .safetensors file; tell the bot's owner.") from None
        check_family(file, header, model=model, model_width=model_width)
        chosen.append(JobLora(file, check_weight(float(weight))))
    return chosen


def _load(pipe: Any, lora: JobLora, adapter: str, model: str, *, source: dict[str, Any] | None = None) -> None:
    """Load ``lora`` (or ``source``: part of its tensors, as read from its file) as ``adapter``."""
    try:
        with warnings.catch_warnings():
            # PEFT warns on every second adapter in a model; several loaded is the point here.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            if source is not None:
                pipe.load_lora_weights(dict(source), adapter_name=adapter)
            else:
                pipe.load_lora_weights(str(lora.file.path.parent), weight_name=lora.file.path.name,
                                       adapter_name=adapter)
        _frozen(pipe)
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        # The library's words (layer names, shapes, paths) are for the owner's log, not the member.
        log.warning("LoRA %r could not be applied to %s: %s: %s", lora.name, model, type(exc).__name__, exc)
        raise LoraError(f"LoRA {lora.name!r} could not be applied to {model}: its layers do not fit this model "
                        "(it may be damaged or made for another base). The bot's owner can read why in the log."
                        ) from exc


def _frozen(pipe: Any) -> None:
    """PEFT marks a new adapter's weights trainable; nothing here trains, and compiled blocks guard on
    requires_grad (a flag that differs from the one seen at compile time recompiles the block)."""
    for component in pipe.components.values():
        if hasattr(component, "requires_grad_") and hasattr(component, "parameters"):
            component.requires_grad_(False)


@contextlib.contextmanager
def applied(pipe: Any, loras: list[JobLora], *, model: str) -> Iterator[None]:
    """``pipe`` with ``loras`` loaded for this block only, and exactly as before after it (PEFT layers
    removed): what ``AdapterCache`` does with a capacity of 0."""
    if not loras:
        yield
        return
    adapters: list[str] = []
    try:
        for index, lora in enumerate(loras):
            adapter = f"atelier_job_{index}"
            _load(pipe, lora, adapter, model)
            adapters.append(adapter)
        pipe.set_adapters(adapters, adapter_weights=[lora.weight for lora in loras])
        yield
    finally:
        # Also after a load that failed half way: it may have wrapped some layers already.
        pipe.unload_lora_weights()
