"""Which loaded models stay on their device, which wait in host memory, and which go (memory budgets).

The model cache (inference/cache.py) loads pipelines; this part of it decides where they live. A
model is a set of modules, and pipelines built over each other (``from_pipe``) share modules, so
every size is summed over distinct modules and a module moves only when none of its users stays.
A job pins the models it uses: making room never moves them.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from inference import heap, memory

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Resident:
    """What an admin sees of one loaded model (``ModelCache.residents``)."""

    name: str
    device: str
    where: str  # "device": ready to run; "ram": parked in host memory, moved back on its next job
    bytes: int
    pinned: bool


class Residency:
    """Pipelines resident in memory, keyed by (model name, device), kept within memory budgets.

    ``vram_budget``: bytes of models each device may hold (None: the device's memory less headroom,
    no limit on a CPU device). When a load or a model coming back would exceed it, the models that no
    job is using move to host memory, where they wait to be moved back in seconds instead of reloaded
    from disk: the one the fewest queued jobs want first (``queued``, as the scheduler last reported
    it), then the least recently used; beyond ``ram_budget`` the least recently used of those are dropped.
    Modules that pipelines share are counted once and move only when none of their users stays.
    """

    def __init__(self, *, vram_budget: int | None = None, ram_budget: int | None = None) -> None:
        self._pipelines: dict[tuple[str, str], Any] = {}
        # (source, dtype, UNet file or None) per entry: what a later model may share with it.
        self._sources: dict[tuple[str, str], tuple[str, torch.dtype, str | None]] = {}
        # The scheduler config each model folder ships (its training noise schedule). Schedulers
        # are always derived from this, never from a pipeline's current scheduler, whose config
        # carries the previous choice's options (e.g. Karras sigmas leaking into Euler).
        self._scheduler_configs: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.RLock()
        # (name, device) -> (the resident pipeline it was built over, the companion); see companion().
        self._companions: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.vram_budget = vram_budget
        self.ram_budget = memory.ram_budget(ram_budget)
        self._where: dict[tuple[str, str], str] = {}
        self._used: dict[tuple[str, str], int] = {}  # last use, by a counter: the LRU order
        self._clock = itertools.count()
        self._pins: collections.Counter[tuple[str, str]] = collections.Counter()
        self._offloaded: set[tuple[str, str]] = set()  # running with model CPU offload right now
        self._budgets: dict[str, int | None] = {}
        self._sizes: dict[str, int] = {}  # model name -> bytes when last loaded (room is made before a reload)
        self.moves = 0  # models moved off a device to make room (for tests and logs)
        # Queued jobs per model name, set by the pool before a load (bot/services/pool_events.py): a
        # model many queued jobs want stays over a more recently used one nobody waits for.
        self.queued: dict[str, int] = {}

    def loaded(self) -> list[tuple[str, str]]:
        """(model name, device) pairs currently loaded (on their device or parked in RAM)."""
        with self._guard:
            return list(self._pipelines)

    def residents(self) -> list[Resident]:
        """Every loaded model, where it is and its size (shared modules counted in each user)."""
        with self._guard:
            return [Resident(key[0], key[1], "offload" if key in self._offloaded else self._where[key],
                             memory.distinct_bytes(memory.modules_of(pipe)), self._pins[key] > 0)
                    for key, pipe in sorted(self._pipelines.items(), key=lambda kv: -self._used.get(kv[0], 0))]

    def on_device(self, device: str) -> set[str]:
        """Names of the models ready to run on ``device`` without a load or a move."""
        with self._guard:
            return {key[0] for key, where in self._where.items() if key[1] == device and where == "device"}

    @contextlib.contextmanager
    def pinned(self, device: str, names: Iterable[str]) -> Iterator[None]:
        """Keep these models on ``device`` while a job uses them: making room never moves them."""
        keys = [(name, device) for name in dict.fromkeys(names)]
        with self._guard:
            self._pins.update(keys)
        try:
            yield
        finally:
            with self._guard:
                self._pins.subtract(keys)
                self._pins += collections.Counter()  # drops the zeros

    def free(self, device: str) -> int:
        """After an out-of-memory error: move every model no job is using off ``device``; returns how many."""
        with self._guard:
            victims = [k for k, where in self._where.items()
                       if k[1] == device and where == "device" and not self._pins[k]]
        for key in victims:
            self._park(key)
        self._trim_ram()
        memory.release_cached(device)
        return len(victims)

    @contextlib.contextmanager
    def cpu_offload(self, device: str, names: Iterable[str]) -> Iterator[None]:
        """Run the job's models with diffusers' model CPU offload: each module visits the GPU only while
        it computes. The last resort before telling a member the job does not fit; afterwards the
        pipelines are whole again and parked in RAM (their next job moves them back)."""
        keys = [k for k in ((name, device) for name in dict.fromkeys(names)) if k in self._pipelines]
        offloadable = torch.device(device).type == "cuda"
        for key in keys:
            self._park(key, force=True)
            if offloadable:
                pipe = self._pipelines[key]
                if getattr(pipe, "hf_device_map", None) is not None:  # loaded with device_map: diffusers refuses
                    pipe.reset_device_map()
                pipe.enable_model_cpu_offload(device=device)
            self._offloaded.add(key)
        try:
            yield
        finally:
            for key in keys:
                self._offloaded.discard(key)
                if offloadable:
                    self._pipelines[key].remove_all_hooks()
                    for module in memory.modules_of(self._pipelines[key]):
                        module.to("cpu")
            memory.release_cached(device)

    def evict(self, name: str, device: str | None = None) -> int:
        """Drop a model from memory (every device unless one is given); returns how many went."""
        with self._guard:
            keys = [k for k in self._pipelines if k[0] == name and (device is None or k[1] == device)]
            for key in keys:
                self._forget(key)
            companions = [k for k in self._companions if k[0] == name and (device is None or k[1] == device)]
            for key in companions:
                del self._companions[key]
            keys += [k for k in companions if k not in keys]
        if keys:
            heap.settle(f"evicting {name}", thaw=True)
        if keys and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return len(keys)

    # ----- budgets -----

    def budget(self, device: str) -> int | None:
        """Bytes of models ``device`` may hold (None: no limit)."""
        if device not in self._budgets:
            self._budgets[device] = memory.device_budget(device, self.vram_budget)
        return self._budgets[device]

    def _device_modules(self, device: str, skip: tuple[str, str] | None = None) -> list[torch.nn.Module]:
        with self._guard:
            pipes = [pipe for key, pipe in self._pipelines.items()
                     if key[1] == device and self._where[key] == "device" and key != skip]
            pipes += [companion for (base, companion) in self._companions.values()
                      if any(base is pipe for pipe in pipes)]
        return [module for pipe in pipes for module in memory.modules_of(pipe)]

    def device_bytes(self, device: str) -> int:
        """Bytes of the distinct modules of the models ready on ``device``."""
        return memory.distinct_bytes(self._device_modules(device))

    def ram_bytes(self) -> int:
        """Bytes of the distinct modules parked in host memory (not also used on a device)."""
        with self._guard:
            on_devices = {id(m) for d in {k[1] for k in self._pipelines} for m in self._device_modules(d)}
            parked = [m for key, pipe in self._pipelines.items() if self._where[key] == "ram"
                      for m in memory.modules_of(pipe) if id(m) not in on_devices]
        return memory.distinct_bytes(parked)

    def _fit(self, device: str, keep: set[tuple[str, str]], extra: int = 0) -> None:
        """Move unpinned models off ``device`` until it is within its budget: the least wanted by queued
        jobs first, then the least recently used."""
        budget = self.budget(device)
        if budget is None:
            return
        while self.device_bytes(device) + extra > budget:
            with self._guard:
                candidates = [k for k, where in self._where.items() if k[1] == device and where == "device"
                              and not self._pins[k] and k not in keep]
            if not candidates:
                log.warning("models on %s take %s, over its budget of %s, and every one is in use", device,
                            memory.gb(self.device_bytes(device) + extra), memory.gb(budget))
                break
            queued = self.queued
            self._park(min(candidates, key=lambda k: (queued.get(k[0], 0), self._used.get(k, 0))))
        self._trim_ram()

    def _park(self, key: tuple[str, str], *, force: bool = False) -> None:
        """Move a model's modules to host memory, except those another model on the device still uses."""
        device = key[1]
        with self._guard:
            if self._where.get(key) != "device" and not force:
                return
            pipe = self._pipelines[key]
            self._where[key] = "ram"
            for companion_key, (base, _) in list(self._companions.items()):
                if base is pipe:  # built over it: rebuilt (cheaply) when the model is back
                    del self._companions[companion_key]
            staying = {id(m) for m in self._device_modules(device)}
        moved = [m for m in memory.modules_of(pipe) if id(m) not in staying]
        for module in moved:
            module.to("cpu")
        self.moves += 1
        log.info("moved %s off %s to RAM (%s) to make room", key[0], device, memory.gb(memory.distinct_bytes(moved)))

    def _bring_back(self, key: tuple[str, str], device: str) -> None:
        pipe = self._pipelines[key]
        with self._guard:
            here = {id(m) for m in self._device_modules(device)}
        coming = [m for m in memory.modules_of(pipe) if id(m) not in here]
        self._fit(device, keep={key}, extra=memory.distinct_bytes(coming))
        started = time.perf_counter()
        for module in coming:
            module.to(device)
        with self._guard:
            self._where[key] = "device"
        log.info("moved %s back onto %s in %.2f s", key[0], device, time.perf_counter() - started)

    def _trim_ram(self) -> None:
        """Drop the least recently used parked models while host memory is over its budget."""
        if self.ram_budget is None:
            return
        while self.ram_bytes() > self.ram_budget:
            with self._guard:
                # A model being loaded or moved back (its key's lock held) is not a candidate.
                parked = [k for k, where in self._where.items() if where == "ram" and not self._pins[k]
                          and not (k in self._locks and self._locks[k].locked())]
                if not parked:
                    return
                victim = min(parked, key=lambda k: self._used.get(k, 0))
                self._forget(victim)
            log.info("dropped %s from RAM (over ATELIER_RAM_BUDGET)", victim[0])
            heap.settle(f"dropping {victim[0]}", thaw=True)

    def _forget(self, key: tuple[str, str]) -> None:
        with self._guard:
            pipe = self._pipelines.pop(key)
            for name in (self._sources, self._scheduler_configs, self._where, self._used):
                name.pop(key, None)
            for companion_key, (base, _) in list(self._companions.items()):
                if base is pipe:
                    del self._companions[companion_key]
