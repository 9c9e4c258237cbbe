"""The LoRAs kept loaded on each pipeline (``AdapterCache``), switched on for one job at a time.

Recently used LoRAs stay loaded (a bounded LRU of PEFT adapters per pipeline, so a popular LoRA is
read from disk and injected once, not on every job). A job switches its own on with ``set_adapters``
at its weights, and ``disable_lora`` switches every adapter off afterwards: a disabled PEFT layer
returns exactly its base layer's output, so nothing of a LoRA can reach the next member's job, even
on pipelines that share text encoders (SDXL and SDXL-Lightning; adapter names are unique per
pipeline, so one's adapters are never active on the other). With a cache of 0 a LoRA is loaded for
one job and unloaded afterwards (PEFT layers removed). The weights stay unfused: fusing and
unfusing does not restore the base weights bit for bit.

On a compiled UNet (inference/hotswap.py) the UNet side of a LoRA goes into the fixed slots instead
(its weights copied in, nothing added or removed, so nothing recompiles); its text-encoder side is a
cached adapter as above. A LoRA the slots cannot take is loaded as its own adapter for that job only
and deleted afterwards, so the UNet is back to the shape its blocks were compiled for.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inference.lora import JobLora, _frozen, _load, applied

log = logging.getLogger(__name__)

# Adapters kept loaded per pipeline by default (ATELIER_LORA_CACHE).
DEFAULT_CACHE = 8

Key = tuple[str, int, int, str]


def _file_key(path: Path, part: str = "all") -> Key:
    """A LoRA file as it is now (a replaced or edited file is another adapter), and which of its
    parts the adapter holds: "all", or "text" (its text-encoder layers, beside the UNet slots)."""
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns, part


class AdapterCache:
    """The LoRAs kept loaded on each pipeline, least recently used dropped beyond ``capacity``.

    One engine's cache, used from its device thread only. Keyed by the pipeline's denoiser module
    (weakly: an evicted model takes its adapters with it); img2img and other pipelines derived with
    ``from_pipe`` load through their base pipeline, whose modules they share.
    """

    def __init__(self, capacity: int = DEFAULT_CACHE) -> None:
        self.capacity = max(0, int(capacity))
        self._by_pipe: weakref.WeakKeyDictionary[Any, OrderedDict[Key, str]] = weakref.WeakKeyDictionary()
        self.loads = 0  # files read and injected as adapters, for tests and logs
        # Files the UNet slots cannot take (rank, layers, alphas): loaded as their own adapter.
        self._unswappable: set[Key] = set()
        # What a file held when it was last read for the slots: (UNet layers, text-encoder layers).
        self._parts: dict[Key, tuple[bool, bool]] = {}

    def loaded(self, pipe: Any) -> list[str]:
        """The LoRA files loaded on ``pipe``, least recently used first."""
        return [key[0] for key in self._by_pipe.get(pipe.unet, {})]

    def install_slots(self, pipe: Any, *, rank: int, count: int) -> None:
        """Give ``pipe``'s UNet its fixed LoRA slots (inference/hotswap.py); call before compiling it."""
        from inference import hotswap

        hotswap.Slots.install(pipe.unet, rank=rank, count=count)

    @contextlib.contextmanager
    def applied(self, pipe: Any, loras: list[JobLora], *, model: str) -> Iterator[None]:
        """``pipe`` with ``loras`` active at their weights inside the block; afterwards every adapter
        is switched off, so the pipeline computes exactly what it did before.

        Modules shared with other pipelines (from_pipe, img2img) see the LoRA while the block runs;
        the engine runs one job per device at a time, so no other job can be inside it meanwhile.
        """
        if not loras:
            yield
            return
        from inference import hotswap

        slots = hotswap.slots_of(pipe.unet)
        if slots is not None:
            with self._slotted(pipe, slots, loras, model):
                yield
            return
        if self.capacity == 0:
            with applied(pipe, loras, model=model):
                yield
            return
        names = self._by_pipe.setdefault(pipe.unet, OrderedDict())
        try:
            adapters = [self._adapter(pipe, names, lora, model) for lora in loras]
            self._trim(pipe, names, keep=set(adapters))
            pipe.enable_lora()
            pipe.set_adapters(adapters, adapter_weights=[lora.weight for lora in loras])
            _frozen(pipe)  # PEFT's set_adapter marks the active adapters trainable again
        except BaseException:
            self._forget(pipe, names)
            raise
        try:
            yield
        finally:
            pipe.disable_lora()

    @contextlib.contextmanager
    def warming(self, pipe: Any) -> Iterator[None]:
        """The first slot switched on at weight 0 (adds nothing): a warm-up run inside traces the
        blocks as a one-LoRA job runs them, so a member's first LoRA job compiles nothing."""
        from inference import hotswap

        slots = hotswap.slots_of(pipe.unet)
        if slots is None:
            yield
            return
        hotswap.switch_on(pipe, slots, [0.0], unet_adapters=[], text_adapters=[], scales={})
        _frozen(pipe)
        try:
            yield
        finally:
            pipe.disable_lora()

    @contextlib.contextmanager
    def _slotted(self, pipe: Any, slots: Any, loras: list[JobLora], model: str) -> Iterator[None]:
        from inference import hotswap

        names = self._by_pipe.setdefault(pipe.unet, OrderedDict())
        weights: list[float] = []  # per slot in use
        texts: list[str] = []  # cached text-encoder adapters
        own: list[str] = []  # this job's own adapters (LoRAs the slots cannot take)
        scales: dict[str, float] = {}
        try:
            for lora in loras:
                key = _file_key(lora.file.path, "text")
                try:
                    if key in self._unswappable:
                        raise hotswap.NotSwappable("seen before")
                    text, slotted = self._slot(pipe, slots, names, lora, key, model, index=len(weights))
                except hotswap.NotSwappable as exc:
                    if isinstance(exc, hotswap.SlotsFull):
                        log.info("LoRA %r loaded as its own adapter on %s: %s", lora.name, model, exc)
                    elif key not in self._unswappable:
                        self._unswappable.add(key)
                        log.warning("LoRA %r does not fit the LoRA slots of %s (%s): it is loaded as its own "
                                    "adapter for each job, and the compiled blocks recompile for it",
                                    lora.name, model, exc)
                    adapter = f"atelier_own_{len(own)}"
                    _load(pipe, lora, adapter, model)
                    self.loads += 1
                    own.append(adapter)
                    scales[adapter] = lora.weight
                    continue
                if slotted:
                    weights.append(lora.weight)
                if text is not None:
                    texts.append(text)
                    scales[text] = lora.weight
            self._trim(pipe, names, keep=set(texts))
            hotswap.switch_on(pipe, slots, weights, unet_adapters=own, text_adapters=texts + own, scales=scales)
            _frozen(pipe)
        except BaseException:
            self._drop(pipe, own)
            self._forget(pipe, names)
            raise
        try:
            yield
        finally:
            pipe.disable_lora()
            self._drop(pipe, own)
            if self.capacity == 0:
                self._trim(pipe, names, keep=set(), limit=0)

    def _slot(self, pipe: Any, slots: Any, names: OrderedDict[Key, str], lora: JobLora, key: Key, model: str,
              *, index: int) -> tuple[str | None, bool]:
        """``lora``'s UNet layers in slot ``index`` and its text-encoder layers as a cached adapter:
        (that adapter or None when it has no text-encoder layers, whether it took the slot). The file
        is read only when one of them is missing."""
        from inference import hotswap

        text = names.get(key)
        if text is not None:
            names.move_to_end(key)
        parts = self._parts.get(key)  # (has UNet layers, has text-encoder layers), once read
        if parts is not None and parts[0] and index >= len(slots.names):
            raise hotswap.SlotsFull(f"the job has more LoRAs than the {len(slots.names)} slots")
        if parts is not None and (not parts[0] or slots.holders[index] == key) and (not parts[1] or text):
            return text, parts[0]
        try:
            unet_part, text_part = hotswap.split(hotswap.read(lora.file.path))
        except (OSError, ValueError) as exc:
            raise hotswap.NotSwappable(f"{type(exc).__name__}: {exc}") from None
        self._parts[key] = (bool(unet_part), bool(text_part))
        if unet_part:
            if index >= len(slots.names):
                raise hotswap.SlotsFull(f"the job has more LoRAs than the {len(slots.names)} slots")
            slots.fill(pipe, index, key, unet_part)
        if text_part and text is None:
            text = f"atelier_{uuid.uuid4().hex[:12]}"
            _load(pipe, lora, text, model, source=text_part)
            names[key] = text
            self.loads += 1
        return text, bool(unet_part)

    def _adapter(self, pipe: Any, names: OrderedDict[Key, str], lora: JobLora, model: str) -> str:
        key = _file_key(lora.file.path)
        adapter = names.get(key)
        if adapter is not None:
            names.move_to_end(key)
            return adapter
        adapter = f"atelier_{uuid.uuid4().hex[:12]}"
        _load(pipe, lora, adapter, model)
        names[key] = adapter
        self.loads += 1
        return adapter

    def _trim(self, pipe: Any, names: OrderedDict[Key, str], *, keep: set[str], limit: int | None = None) -> None:
        limit = self.capacity if limit is None else limit
        for key in list(names):
            if len(names) <= limit:
                break
            if names[key] not in keep:
                pipe.delete_adapters(names.pop(key))

    def _drop(self, pipe: Any, adapters: list[str]) -> None:
        """Delete a job's own adapters (the UNet returns to the shape its blocks were compiled for)."""
        present = set().union(*pipe.get_list_adapters().values()) if adapters else set()
        with warnings.catch_warnings():
            # PEFT announces which adapter it makes active instead; all are switched off here.
            warnings.filterwarnings("ignore", message="Adapter .* was active which is now deleted")
            for adapter in adapters:
                if adapter in present:
                    pipe.delete_adapters(adapter)
        if adapters:
            _frozen(pipe)  # PEFT re-activates what remains, marking it trainable
        adapters.clear()

    def _forget(self, pipe: Any, names: OrderedDict[Key, str]) -> None:
        """After a load that failed half way (it may have wrapped some layers already): every cached
        adapter of this pipeline goes (and on a pipeline without slots the original modules are put
        back)."""
        from inference import hotswap

        if hotswap.slots_of(pipe.unet) is None:
            names.clear()
            pipe.unload_lora_weights()
            return
        present = set().union(*pipe.get_list_adapters().values())
        for adapter in present:
            if not adapter.startswith(hotswap.SLOT_PREFIX):
                pipe.delete_adapters(adapter)
        names.clear()
        _frozen(pipe)

