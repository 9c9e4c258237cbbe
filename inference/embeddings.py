"""Textual-inversion embeddings from the operator's folder (ATELIER_EMBEDDINGS_DIR), used by name in
prompts and negative prompts as in A1111 (``easynegative`` in the negative prompt), loaded for one
job and removed after it.

A file's name without its extension is the word members type (``bad-hands-5.pt`` -> ``bad-hands-5``).
The formats members download all load: SD 1.5 files in A1111's layout (``string_to_param``, one or
several vectors), diffusers' ``{token: tensor}``, kohya's ``emb_params``, and SDXL files holding
``clip_l`` and ``clip_g`` (one set of vectors for each of its two text encoders). ``.pt`` and
``.bin`` files are read with ``torch.load(weights_only=True)``: tensors only, never code.

While a job runs its embeddings are added tokens of the pipeline's tokenizers and rows of its text
encoders' token embeddings; ``applied`` removes both afterwards, so the next job runs on the
pipeline exactly as it was. A multi-vector embedding is several tokens (``name``, ``name_1``, ...),
and ``expand`` rewrites the word into them before the prompt is tokenized.

Only the standard library at import: the bot imports this module to find the names a prompt uses.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.checkpoints import file_sha256, read_header
from inference.limits import MAX_EMBEDDING_BYTES
from inference.listing import ListedFolder
from inference.models import RequestRefused

log = logging.getLogger(__name__)

SUFFIXES = (".safetensors", ".pt", ".bin")
LIST_TTL = 10.0


class EmbeddingError(RequestRefused):
    """An embedding cannot be used for this job; the message says which one and why."""


class EmbeddingLibrary:
    """The embedding files of one folder (not its subfolders), re-listed at most every ``ttl`` seconds."""

    def __init__(self, root: Path | str, *, ttl: float = LIST_TTL) -> None:
        self.root = Path(root)
        self._listing = ListedFolder(self.root, scan, ttl=ttl)

    def names(self) -> list[str]:
        return self._listing.names()

    def path(self, name: str) -> Path:
        path = self._listing.find(name)
        if path is None:
            raise EmbeddingError(f"Unknown embedding {name!r}; it is not in the bot's embeddings folder")
        return path

    def used_in(self, *texts: str) -> list[str]:
        """The embeddings whose names appear as whole words in any of the texts (case-sensitive, as A1111)."""
        return [name for name in self.names() if any(_word(name).search(text) for text in texts if text)]


@functools.lru_cache(maxsize=8)
def library(root: str) -> EmbeddingLibrary:
    """One shared library per folder, so listings are cached across commands."""
    return EmbeddingLibrary(root)


@functools.lru_cache(maxsize=256)
def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")


def scan(root: Path) -> dict[str, Path]:
    """name -> file for each embedding file directly in ``root`` (symlinks out of it are skipped)."""
    index: dict[str, Path] = {}
    if not root.is_dir():
        log.warning("embeddings folder %s does not exist", root)
        return index
    base = root.resolve()
    for entry in os.scandir(base):
        stem, suffix = os.path.splitext(entry.name)
        if suffix.lower() not in SUFFIXES or entry.name.startswith(".") or not entry.is_file():
            continue
        if not Path(entry.path).resolve().is_relative_to(base):
            continue
        index.setdefault(stem, Path(entry.path))
    return index


def short_hash(path: Path) -> str:
    """A1111's embedding hash ("TI hashes" in PNG parameters): the first 12 hex digits of the file's SHA-256."""
    return file_sha256(path)[:12]


def family_hint(path: Path) -> str | None:
    """"sdxl" or "sd1" for a .safetensors embedding (its header names its tensors), None when the
    file does not say (``.pt``/``.bin`` need unpickling: the worker checks those)."""
    if path.suffix.lower() != ".safetensors":
        return None
    try:
        header = read_header(path)
    except (OSError, ValueError):
        return None
    return "sdxl" if "clip_g" in header else "sd1"


# ----- one job's embeddings on a pipeline -----


@dataclass(frozen=True, slots=True)
class JobEmbedding:
    name: str
    path: Path


def prepare(folder: EmbeddingLibrary | None, names: list[str]) -> list[JobEmbedding]:
    if not names:
        return []
    if folder is None:
        raise EmbeddingError("Textual-inversion embeddings are turned off on this worker (ATELIER_EMBEDDINGS_DIR)")
    return [JobEmbedding(name, folder.path(name)) for name in names]


def read_vectors(path: Path) -> dict[str, Any]:
    """The embedding's vectors per text encoder: {"clip_l": [n, 768], "clip_g": [n, 1280]} for SDXL
    files, {"": [n, width]} for single-encoder (SD 1.x/2.x) files."""
    import torch

    if path.stat().st_size > MAX_EMBEDDING_BYTES:
        raise EmbeddingError(f"{path.name} is too large to be an embedding")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise EmbeddingError(f"Embedding {path.stem!r} cannot be read ({type(exc).__name__}); tell the bot's owner") from exc
    if isinstance(data, dict) and "clip_l" in data and "clip_g" in data:
        return {"clip_l": data["clip_l"], "clip_g": data["clip_g"]}
    if isinstance(data, dict) and "string_to_param" in data:
        data = data["string_to_param"]
    if isinstance(data, dict) and "emb_params" in data:
        data = data["emb_params"]
    if isinstance(data, dict) and len(data) == 1:
        data = next(iter(data.values()))
    if not isinstance(data, torch.Tensor):
        raise EmbeddingError(f"Embedding {path.stem!r} is not in a textual-inversion layout this bot reads")
    return {"": data if data.ndim == 2 else data.reshape(1, -1)}


def _targets(pipe: Any, vectors: dict[str, Any], name: str) -> list[tuple[Any, Any, Any]]:
    """(tokenizer, text encoder, vectors) per encoder of ``pipe`` that the file has vectors for."""
    sdxl = getattr(pipe, "text_encoder_2", None) is not None
    if sdxl != ("clip_g" in vectors):
        made = "SDXL" if "clip_g" in vectors else "SD 1.x/2.x"
        raise EmbeddingError(f"Embedding {name!r} is made for {made} models; this model is "
                             f"{'SDXL' if sdxl else 'not SDXL'}. Remove it from the prompt or choose another model")
    if sdxl:
        pairs = [(pipe.tokenizer, pipe.text_encoder, vectors["clip_l"]),
                 (pipe.tokenizer_2, pipe.text_encoder_2, vectors["clip_g"])]
    else:
        pairs = [(pipe.tokenizer, pipe.text_encoder, vectors[""])]
    for _tokenizer, encoder, tensor in pairs:
        width = encoder.get_input_embeddings().weight.shape[1]
        if tensor.shape[-1] != width:
            raise EmbeddingError(f"Embedding {name!r} has {tensor.shape[-1]}-wide vectors and this model's text "
                                 f"encoder takes {width}: it was made for another model family")
    return pairs


@contextlib.contextmanager
def applied(pipe: Any, embeddings: list[JobEmbedding]) -> Iterator[Callable[[str], str]]:
    """Add the job's embeddings to ``pipe``'s tokenizers and text encoders; yields the function that
    rewrites a prompt's embedding words into their tokens; removes them all afterwards."""
    if not embeddings:
        yield lambda text: text
        return
    loaded: list[tuple[Any, Any, list[str]]] = []
    counts: dict[str, int] = {}
    try:
        for item in embeddings:
            for tokenizer, encoder, tensor in _targets(pipe, read_vectors(item.path), item.name):
                if item.name in tokenizer.get_vocab():
                    raise EmbeddingError(f"Embedding {item.name!r} has the name of a word the model already knows; "
                                         "ask the bot's owner to rename the file")
                tokens = [item.name] + [f"{item.name}_{i}" for i in range(1, tensor.shape[0])]
                pipe.load_textual_inversion(tensor, token=item.name, tokenizer=tokenizer, text_encoder=encoder)
                loaded.append((tokenizer, encoder, tokens))
                counts[item.name] = tensor.shape[0]

        def expand(text: str) -> str:
            for name, count in counts.items():
                if count > 1:
                    text = _word(name).sub(" ".join([name] + [f"{name}_{i}" for i in range(1, count)]), text)
            return text

        yield expand
    finally:
        for tokenizer, encoder, tokens in reversed(loaded):
            pipe.unload_textual_inversion(tokens=tokens, tokenizer=tokenizer, text_encoder=encoder)
