"""The registry and the engines a process serves, built from the settings in one place.

`atelier run`, `atelier generate` and `atelier worker` serve the same models the same way: the
packaged registry extended by ATELIER_MODELS and ATELIER_MODELS_DIR, and one model cache per process
(its memory budgets are per device, its RAM budget is the whole host's) shared by every device.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.settings import Settings
from inference.models import ModelRegistry, RegistryError


def load_registry(settings: Settings) -> ModelRegistry:
    """The models this deployment serves; RegistryError names the file, key or setting at fault."""
    registry = ModelRegistry.load(settings.models, models_dir=settings.models_dir)
    unknown = [name for name in settings.preload_models(registry.default_name) if name not in registry]
    if unknown:
        raise RegistryError(f"ATELIER_PRELOAD names {', '.join(map(repr, unknown))}, not a model "
                            f"(models: {', '.join(registry.names())})")
    return registry


def engine_factory(settings: Settings, registry: ModelRegistry, *, batch_max: int | None = None) -> Callable[[str], Any]:
    """device -> Engine, all sharing one model cache. Call the factory on a worker thread: it imports torch.

    ``batch_max``: a remote worker runs one job a call (1), so no batch-invariance patch either."""
    shared: dict[str, Any] = {}
    lock = threading.Lock()

    def factory(device: str) -> Any:
        from inference import compile as compiling
        from inference.cache import ModelCache
        from inference.engine import Engine

        # The one place the GPU path's process-wide torch settings (TF32, Dynamo's limit) are made.
        compiling.configure_process(compiling.resolve(settings.compile_mode, device))
        with lock:
            if "cache" not in shared:
                shared["cache"] = ModelCache(vram_budget=settings.vram_budget, ram_budget=settings.ram_budget)
        return Engine(registry, device, cache=shared["cache"], lora_dir=settings.lora_dir,
                      embeddings_dir=settings.embeddings_dir,
                      batch_max=settings.batch_max if batch_max is None else batch_max,
                      lora_cache=settings.lora_cache, compile_mode=settings.compile_mode,
                      lora_rank=settings.lora_rank, lora_slots=settings.lora_slots,
                      train_dir=settings.train_dir if device in settings.train_device_list else None,
                      # Only where members train: LoRAs keep the attention projections unfused (slower).
                      member_lora_dir=settings.train_dir / "loras" if settings.train_device_list else None)

    return factory
