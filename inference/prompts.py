"""Prompts as the text encoders see them: A1111 emphasis syntax and prompts longer than 77 tokens.

Members paste prompts written for AUTOMATIC1111 and Civitai: ``(word:1.3)``, ``(word)`` (x1.1),
``[word]`` (/1.1), nested brackets multiply, ``\\(`` is a literal bracket. A plain diffusers call
would feed those brackets to CLIP as text and silently cut everything after 77 tokens. Here the
A1111 emphasis is read into (text, weight) fragments and compel turns the fragments into
conditioning: weighted token embeddings, and long prompts encoded as several 77-token chunks that
are concatenated (positive and negative padded to the same length), SDXL's two encoders and pooled
embedding included. compel has no A1111 reader of its own and its own syntax gives ``+``, ``-`` and
``.and()`` meanings that ordinary prompts trip over, so the fragments are built here and handed to
compel's prompt objects directly rather than re-serialised into compel syntax.

``BREAK`` (the capitalised word) ends a chunk as in A1111: the words after it start a new 77-token
chunk, the one before padded with the empty prompt's tokens.

A prompt with no emphasis that fits one chunk takes the exact path it always took (the strings go to
the pipeline), so such images stay bit-identical to earlier releases. Emphasis follows compel's
definition (the embedding moves away from the empty prompt's by the weight; weights below 1 blend
towards the prompt without the words), which is close to but not numerically A1111's.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from compel import Compel, ReturnedEmbeddingsType, SplitLongTextMode
from compel.prompt_parser import FlattenedPrompt

log = logging.getLogger(__name__)

# A1111's multipliers for a bare (word) and [word].
ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
# Tokens per chunk a CLIP encoder sees, without its start and end markers.
CHUNK_TOKENS = 75
# Longest prompt encoded: 8 chunks' worth of tokens (one more when chunk ends fall between words).
# Each chunk is one more text-encoder pass and a longer cross-attention, and CLIP attends to little
# of a prompt that long anyway. The rest is dropped, and the member is told (GenerationResult.notes).
MAX_CHUNKS = 8
MAX_TOKENS = CHUNK_TOKENS * MAX_CHUNKS

# One lexical unit of A1111 emphasis: an escaped character, an opening or closing bracket, a
# ":number)" weight closer, or a run of ordinary text.
_TOKEN = re.compile(r"\\.|[(\[\])]|:\s*[+-]?(?:\d+\.?\d*|\.\d+)\s*\)|[^\\()\[\]:]+|:|\\", re.DOTALL)
_WEIGHT_CLOSER = re.compile(r":\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)")

Fragments = list[tuple[str, float]]

# A1111's chunk separator: the word BREAK, in capitals, standing alone.
_BREAK = re.compile(r"(?<![\w])BREAK(?![\w])")


def parse_emphasis(text: str) -> Fragments:
    """A prompt in A1111 emphasis syntax -> (text, weight) fragments, neighbours of equal weight merged.

    Unbalanced brackets are forgiving, as in A1111: an unclosed ``(`` applies to the rest of the
    prompt, a stray ``)`` or ``]`` is kept as text.
    """
    parts: list[list[Any]] = []
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for part in parts[start:]:
            part[1] *= factor

    for match in _TOKEN.finditer(text):
        token = match.group(0)
        closer = _WEIGHT_CLOSER.fullmatch(token)
        if token.startswith("\\") and len(token) == 2:
            parts.append([token[1], 1.0])
        elif token == "(":
            round_open.append(len(parts))
        elif token == "[":
            square_open.append(len(parts))
        elif closer is not None and round_open:
            scale(round_open.pop(), float(closer.group(1)))
        elif token == ")" and round_open:
            scale(round_open.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_open:
            scale(square_open.pop(), SQUARE_MULTIPLIER)
        else:
            parts.append([token, 1.0])
    for start in round_open:
        scale(start, ROUND_MULTIPLIER)
    for start in square_open:
        scale(start, SQUARE_MULTIPLIER)

    merged: Fragments = []
    for piece, weight in parts:
        if merged and merged[-1][1] == weight:
            merged[-1] = (merged[-1][0] + piece, weight)
        else:
            merged.append((piece, weight))
    return merged or [("", 1.0)]


def split_breaks(fragments: Fragments) -> list[Fragments]:
    """The fragments cut at each ``BREAK`` (which is dropped): one list per chunk group."""
    segments: list[Fragments] = [[]]
    for piece, weight in fragments:
        parts = _BREAK.split(piece)
        for index, part in enumerate(parts):
            if index:
                segments.append([])
            if part:
                segments[-1].append((part, weight))
    # Each part costs at least one chunk: past MAX_CHUNKS parts, the rest share the last one.
    if len(segments) > MAX_CHUNKS:
        segments = [*segments[:MAX_CHUNKS - 1], [item for segment in segments[MAX_CHUNKS - 1:] for item in segment]]
    return [segment or [("", 1.0)] for segment in segments]


def has_break(fragments: Fragments) -> bool:
    return any(_BREAK.search(piece) for piece, _ in fragments)


def plain_text(fragments: Fragments) -> str:
    """The words of a parsed prompt without its emphasis (escapes resolved)."""
    return "".join(piece for piece, _ in fragments)


def is_weighted(fragments: Fragments) -> bool:
    return any(weight != 1.0 for piece, weight in fragments if piece.strip())


@dataclass(slots=True)
class EncodedPrompt:
    """Keyword arguments for the pipeline call (strings or embeddings) and what the member should know."""

    kwargs: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    # Tokens of the (positive) prompt as encoded, after any cap; for tests and logs.
    tokens: int = 0


def count_tokens(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])


def cap_tokens(tokenizer: Any, fragments: Fragments, limit: int = MAX_TOKENS) -> tuple[Fragments, int, int]:
    """Keep whole words of the fragments up to ``limit`` tokens; returns (kept, tokens kept, tokens given)."""
    counts = [count_tokens(tokenizer, piece) for piece, _ in fragments]
    total = sum(counts)
    if total <= limit:
        return fragments, total, total
    kept: Fragments = []
    used = 0
    for (piece, weight), count in zip(fragments, counts, strict=True):
        if used + count <= limit:
            kept.append((piece, weight))
            used += count
            continue
        # Cut inside this fragment at the last whole word that fits (tokenizers merge across
        # characters, so cutting by characters could change the tokens before the cut).
        words = re.split(r"(?<=\s)", piece)
        low, high = 0, len(words)
        while low < high:
            middle = (low + high + 1) // 2
            if count_tokens(tokenizer, "".join(words[:middle])) <= limit - used:
                low = middle
            else:
                high = middle - 1
        head = "".join(words[:low])
        if head:
            kept.append((head, weight))
            used += count_tokens(tokenizer, head)
        break
    return kept or [("", 1.0)], used, total


def encode(pipe: Any, prompt: str, negative: str, *, guidance: float, device: str, clip_skip: int = 1,
           expand: Callable[[str], str] | None = None) -> EncodedPrompt:
    """The prompt arguments of one pipeline call (SD 1.5 or SDXL family) for ``prompt`` and ``negative``.

    ``guidance`` decides whether the negative prompt is used at all (diffusers skips it at 1 or less,
    as Lightning and Turbo always run). Runs the text encoders (under no_grad) when embeddings are
    needed, so call it with any LoRA already applied. ``clip_skip`` 2 (A1111's setting, SD 1.x/2.x)
    conditions on CLIP's penultimate layer, final layer norm applied, as A1111 and diffusers do.
    ``expand`` rewrites the words of the job's textual-inversion embeddings into their tokens
    (inference/embeddings.py); such prompts are encoded here, never by the pipeline, which would
    rewrite them a second time.
    """
    use_negative = guidance > 1.0
    positive = parse_emphasis(prompt)
    negative_parts = parse_emphasis(negative) if use_negative and negative.strip() else None
    if expand is not None:
        positive = [(expand(piece), weight) for piece, weight in positive]
        if negative_parts is not None:
            negative_parts = [(expand(piece), weight) for piece, weight in negative_parts]
    tokenizer = pipe.tokenizer
    positive, used, given = cap_tokens(tokenizer, positive)
    notes: list[str] = []
    if used < given:
        notes.append(f"The prompt is {given} tokens long; only the first {used} were used "
                     f"(the limit is {MAX_TOKENS} tokens).")
    negative_tokens = 0
    if negative_parts is not None:
        negative_parts, negative_tokens, negative_given = cap_tokens(tokenizer, negative_parts)
        if negative_tokens < negative_given:
            notes.append(f"The negative prompt is {negative_given} tokens long; only the first "
                         f"{negative_tokens} were used (the limit is {MAX_TOKENS} tokens).")

    simple = (clip_skip == 1 and expand is None and not is_weighted(positive) and used <= CHUNK_TOKENS
              and not has_break(positive)
              and (negative_parts is None or (not is_weighted(negative_parts) and negative_tokens <= CHUNK_TOKENS
                                              and not has_break(negative_parts))))
    if simple:
        # The path every plain prompt always took: diffusers tokenizes the strings itself.
        kwargs: dict[str, Any] = {"prompt": plain_text(positive),
                                  "negative_prompt": plain_text(negative_parts) if negative_parts else None}
        return EncodedPrompt(kwargs, notes, used)
    with torch.no_grad():
        if getattr(pipe, "text_encoder_2", None) is not None:
            kwargs = _encode_sdxl(pipe, positive, negative_parts, use_negative, device)
        else:
            kwargs = _encode_sd(pipe, positive, negative_parts, use_negative, device, penultimate=clip_skip > 1)
    return EncodedPrompt(kwargs, notes, used)


def _compel(tokenizer: Any, text_encoder: Any, device: str, *,
            returned: ReturnedEmbeddingsType = ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED) -> Compel:
    return Compel(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        truncate_long_prompts=False,
        returned_embeddings_type=returned,
        # Chunks end at a word boundary. (PHRASES would search back to the last comma however far,
        # leaving most of a chunk empty for long comma-free phrases.)
        split_long_text_mode=SplitLongTextMode.WORDS,
        device=device,
        dtype_for_device_getter=lambda _device: text_encoder.dtype,
    )


def _conditioning(compel: Compel, fragments: Fragments) -> torch.Tensor:
    """[1, n*77, d]: each BREAK-separated part encoded as its own chunks, the parts concatenated."""
    parts = []
    for segment in split_breaks(fragments):
        prompt = FlattenedPrompt([(piece, float(weight)) for piece, weight in segment if piece] or [("", 1.0)])
        (conditioning, _tokens), _options = compel.build_conditioning_tensor_for_prompt_object(prompt)
        parts.append(conditioning)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _pad(compel: Compel, tensors: list[torch.Tensor], length: int) -> list[torch.Tensor]:
    """Pad each [1, n*77, d] tensor with the empty prompt's chunk up to ``length`` tokens."""
    empty = compel.conditioning_provider.empty_z.to(tensors[0].device, tensors[0].dtype)
    padded = []
    for tensor in tensors:
        while tensor.shape[1] < length:
            tensor = torch.cat([tensor, empty], dim=1)
        padded.append(tensor)
    return padded


class _WithTextModel:
    """A text encoder seen through the ``.text_model`` attribute compel reads the final layer norm from
    (transformers flattened CLIPTextModel, which no longer has one)."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        self.text_model = encoder

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._encoder(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._encoder, name)


def _encode_sd(pipe: Any, positive: Fragments, negative: Fragments | None, use_negative: bool,
               device: str, *, penultimate: bool = False) -> dict[str, Any]:
    encoder = pipe.text_encoder
    if penultimate and not hasattr(encoder, "text_model"):
        encoder = _WithTextModel(encoder)
    compel = _compel(pipe.tokenizer, encoder, device,
                     returned=(ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NORMALIZED if penultimate
                               else ReturnedEmbeddingsType.LAST_HIDDEN_STATES_NORMALIZED))
    embeds = _conditioning(compel, positive)
    if not use_negative:
        return {"prompt_embeds": embeds}
    negative_embeds = _conditioning(compel, negative or [("", 1.0)])
    length = max(embeds.shape[1], negative_embeds.shape[1])
    embeds, negative_embeds = _pad(compel, [embeds, negative_embeds], length)
    return {"prompt_embeds": embeds, "negative_prompt_embeds": negative_embeds}


def _encode_sdxl(pipe: Any, positive: Fragments, negative: Fragments | None, use_negative: bool,
                 device: str) -> dict[str, Any]:
    """Both encoders' penultimate hidden states side by side, and the second encoder's pooled output.

    The pooled embedding is one vector per prompt: it comes from the first chunk of the plain words,
    as SDXL pipelines do (emphasis cannot apply to it). An empty negative prompt is zeros when the
    model asks for that (``force_zeros_for_empty_prompt``), as diffusers does.
    """
    sdxl_layer = ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED
    first = _compel(pipe.tokenizer, pipe.text_encoder, device, returned=sdxl_layer)
    second = _compel(pipe.tokenizer_2, pipe.text_encoder_2, device, returned=sdxl_layer)
    wanted = [positive]
    zero_negative = negative is None and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False))
    if use_negative and not zero_negative:
        wanted.append(negative or [("", 1.0)])
    lefts = [_conditioning(first, fragments) for fragments in wanted]
    rights = [_conditioning(second, fragments) for fragments in wanted]
    length = max(t.shape[1] for t in lefts + rights)
    lefts, rights = _pad(first, lefts, length), _pad(second, rights, length)
    embeds = [torch.cat([left, right], dim=-1) for left, right in zip(lefts, rights, strict=True)]
    provider = second.conditioning_provider
    pooled = [provider.get_pooled_embeddings([plain_text(split_breaks(fragments)[0])], device=device)
              .to(embeds[0].dtype) for fragments in wanted]
    kwargs: dict[str, Any] = {"prompt_embeds": embeds[0], "pooled_prompt_embeds": pooled[0]}
    if use_negative:
        if zero_negative:
            kwargs["negative_prompt_embeds"] = torch.zeros_like(embeds[0])
            kwargs["negative_pooled_prompt_embeds"] = torch.zeros_like(pooled[0])
        else:
            kwargs["negative_prompt_embeds"] = embeds[1]
            kwargs["negative_pooled_prompt_embeds"] = pooled[1]
    return kwargs
