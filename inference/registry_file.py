"""Reading the models TOML files into specs: the packaged ``inference/data/models.toml``, the
operator's file (``ATELIER_MODELS``) over it, and one model per checkpoint in ``ATELIER_MODELS_DIR``.

Every refusal is a RegistryError naming the file and the key, so a typo is found at start-up
rather than at the first job. Free of torch, like inference/models.py.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inference import checkpoints
from inference.limits import MAX_STRENGTH, MIN_STRENGTH
from inference.models import (
    A1111_SAMPLERS,
    CONTROLNET_BASE_KINDS,
    HELPER_KINDS,
    INPAINT_FAMILY,
    KINDS,
    SCHEDULERS,
    SD_KINDS,
    VAE_KINDS,
    ModelSpec,
    RegistryError,
    scheduler_key,
)

log = logging.getLogger(__name__)

DEFAULT_TOML = Path(__file__).parent / "data" / "models.toml"


def read_specs(path: str | Path | None, models_dir: str | Path | None) -> tuple[list[ModelSpec], str, Path]:
    """(specs in file order, the default model's name, the file they came from): see ModelRegistry.load."""
    tables, default, single_file, _ = _read_tables(DEFAULT_TOML)
    user_path = Path(path) if path is not None else None
    chosen: str | None = None
    if user_path is not None:
        user_tables, chosen, user_single, packaged = _read_tables(user_path)
        if not packaged:
            tables, default, single_file = {}, None, {}
        for name, (where, table) in user_tables.items():
            if table.get("disabled") is True:
                tables.pop(name, None)
            elif name in tables and "kind" not in table and "source" not in table:
                tables[name] = (where, {**tables[name][1], **table})
            else:
                tables[name] = (where, table)
        single_file |= user_single
    toml_path = user_path or DEFAULT_TOML
    if models_dir is not None:
        _add_checkpoints(tables, Path(models_dir))
    if not tables:
        raise RegistryError(f"{toml_path}: no models defined (every packaged model is disabled)")
    # ControlNet entries inherit their base model's defaults, so the bases are parsed first.
    parsed = {name: _parse_spec(where, name, table, single_file=single_file)
              for name, (where, table) in tables.items() if table.get("kind") != "controlnet"}
    for name, (where, table) in tables.items():
        if name not in parsed:
            parsed[name] = _parse_spec(where, name, table, _controlnet_defaults(where, name, table, parsed))
    specs = [parsed[name] for name in tables]
    for spec in specs:
        _check_inpaint_link(tables[spec.name][0], spec, parsed)
    default = chosen or default
    if default is None or default not in parsed:
        if chosen is not None:
            raise RegistryError(f"{toml_path}: default = {chosen!r} is not one of the models ({', '.join(parsed)})")
        default = specs[0].name
    return specs, default, toml_path


# Fields and their types; defaults per kind fill whatever a table leaves out.
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "source": str,
    "steps": int,
    "guidance": (int, float),
    "scheduler": str,
    "width": int,
    "height": int,
    "max_steps": int,
    "max_count": int,
    "description": str,
    "timestep_spacing": str,
}
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "sd15": {
        "steps": 25,
        "guidance": 7.0,
        "scheduler": "dpmpp-2m-karras",
        "width": 512,
        "height": 512,
        "max_steps": 60,
    },
    "sdxl": {
        "steps": 30,
        "guidance": 7.0,
        "scheduler": "dpmpp-2m-karras",
        "width": 1024,
        "height": 1024,
        "max_steps": 60,
    },
    "sdxl-lightning": {
        "steps": 4,
        "guidance": 0.0,
        "scheduler": "euler-trailing",
        "width": 1024,
        "height": 1024,
        "max_steps": 8,
    },
    # Real-ESRGAN-class upscalers: `source` is a .pth/.safetensors file (or a hub repo with `file`);
    # width/height are unused; `max_input` caps the input's pixels (default 1024x1024 at x4).
    "esrgan": {
        "steps": 1,
        "guidance": 0.0,
        "scheduler": "default",
        "width": 512,
        "height": 512,
        "max_steps": 1,
        "max_count": 1,
    },
    # Stable Video Diffusion (image to video). `guidance` is the max of SVD's per-frame guidance ramp
    # (1.0 on the first frame up to it on the last); extras: frames (trained count), max_frames,
    # fps (default), motion (motion bucket id, default 127), decode_chunk_size (frames decoded at once).
    "svd": {
        "steps": 25,
        "guidance": 3.0,
        "scheduler": "default",
        "width": 1024,
        "height": 576,
        "max_steps": 50,
        "max_count": 1,
    },
    "sdxl-turbo": {
        "steps": 1,
        "guidance": 0.0,
        "scheduler": "euler-a-trailing",
        "width": 512,
        "height": 512,
        "max_steps": 4,
    },
    # Stable Diffusion x4 upscaler: prompt-guided latent diffusion, x4 only; `max_input` caps the
    # input's pixels (default 256x256: its UNet runs at the input's size and is heavy above that).
    "sd-x4": {
        "steps": 20,
        "guidance": 9.0,
        "scheduler": "default",
        "width": 512,
        "height": 512,
        "max_steps": 75,
        "max_count": 1,
    },
    # Stable Diffusion 2.x (768-v): v-prediction, which the model's own scheduler config declares.
    "sd2": {
        "steps": 25,
        "guidance": 7.0,
        "scheduler": "dpmpp-2m-karras",
        "width": 768,
        "height": 768,
        "max_steps": 60,
    },
    # Stable Diffusion 3 Medium: MMDiT with flow matching; the card runs 28 steps at CFG 7.
    "sd3": {
        "steps": 28,
        "guidance": 7.0,
        "scheduler": "default",
        "width": 1024,
        "height": 1024,
        "max_steps": 60,
    },
    # DeepFloyd IF: pixel diffusion in stages (64 px, then 256 px, then optionally the x4 upscaler).
    # width/height are the final size; extras: stage_2 (source), stage_3 (an sd-x4 registry name).
    "deepfloyd-if": {
        "steps": 50,
        "guidance": 7.0,
        "scheduler": "default",
        "width": 1024,
        "height": 1024,
        "max_steps": 100,
    },
    # /describe's captioner and tagger, and IP-Adapters, draw nothing: the numbers are unused.
    **{kind: {"steps": 1, "guidance": 0.0, "scheduler": "default", "width": 512, "height": 512, "max_steps": 1,
              "max_count": 1} for kind in HELPER_KINDS},
    # A `controlnet` entry takes its base model's values (see `_controlnet_defaults`); this table
    # only exists so every kind has one.
    "controlnet": {},
}
# Dedicated inpainting checkpoints take their family's defaults (the same sizes and samplers).
_KIND_DEFAULTS |= {kind: _KIND_DEFAULTS[family] for kind, family in INPAINT_FAMILY.items()}
_SPACINGS = ("leading", "trailing", "linspace")


def _controlnet_defaults(path: Path, name: str, table: dict[str, Any], parsed: dict[str, ModelSpec]
                         ) -> dict[str, Any]:
    """A ControlNet entry's defaults are its base model's: same size, steps, guidance and sampler."""
    where = f"{path}: models.{name}"
    base = table.get("base")
    if not isinstance(base, str) or not base:
        raise RegistryError(f"{where}.base is missing (the text-to-image model this ControlNet draws with)")
    spec = parsed.get(base)
    if spec is None:
        raise RegistryError(f"{where}.base = {base!r} is not a model in this file")
    if spec.kind not in CONTROLNET_BASE_KINDS:
        raise RegistryError(f"{where}.base = {base!r} is a {spec.kind} model; a ControlNet needs one of "
                            f"{', '.join(CONTROLNET_BASE_KINDS)}")
    return {"steps": spec.steps, "guidance": spec.guidance, "scheduler": spec.scheduler, "width": spec.width,
            "height": spec.height, "max_steps": spec.max_steps, "max_count": spec.max_count,
            "timestep_spacing": spec.timestep_spacing}


def _check_inpaint_link(path: Path, spec: ModelSpec, parsed: dict[str, ModelSpec]) -> None:
    """``inpaint = "NAME"`` on an SD 1.5 / SDXL entry must name a dedicated inpainting entry of its family;
    ``max_strength`` must be a strength."""
    cap = spec.extra.get("max_strength")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int | float)
                            or not MIN_STRENGTH <= cap <= MAX_STRENGTH):
        raise RegistryError(f"{path}: models.{spec.name}.max_strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}")
    name = spec.extra.get("inpaint")
    if name is None:
        return
    where = f"{path}: models.{spec.name}.inpaint"
    if spec.kind not in SD_KINDS:
        raise RegistryError(f"{where}: only SD 1.5 and SDXL entries name an inpainting model")
    if not isinstance(name, str) or name not in parsed:
        raise RegistryError(f"{where} = {name!r} is not a model in this file")
    target = parsed[name].kind
    family = "sdxl" if spec.kind.startswith("sdxl") else "sd15"
    if INPAINT_FAMILY.get(target) != family:
        raise RegistryError(f"{where} = {name!r} is a {target} model; a {spec.kind} entry needs a {family}-inpaint one")


def _parse_spec(path: Path, name: str, table: Any, defaults: dict[str, Any] | None = None, *,
                single_file: Mapping[str, str] | None = None) -> ModelSpec:
    """Turn one ``[models.NAME]`` table into a spec, failing with the file and key in one line."""
    where = f"{path}: models.{name}"
    if not isinstance(table, dict):
        raise RegistryError(f"{where} must be a table")
    table = {key: value for key, value in table.items() if key != "disabled"}
    if "source" not in table:
        raise RegistryError(f"{where}.source is missing")
    family = None
    checkpoint_kinds = {kind for kinds in checkpoints.FAMILY_KINDS.values() for kind in kinds}
    if (isinstance(table["source"], str) and _is_file_source(table["source"])
            and table.get("kind", "sd15") in checkpoint_kinds):
        family = _checkpoint_family(where, _resolve_source(path, table["source"]))
        table.setdefault("kind", family)
    if "kind" not in table:
        raise RegistryError(f"{where}.kind is missing")
    kind = table["kind"]
    if kind not in KINDS:
        raise RegistryError(f"{where}.kind = {kind!r} is not one of {', '.join(KINDS)}")
    values: dict[str, Any] = {"max_count": 4, "description": "", "timestep_spacing": None}
    values |= defaults if defaults is not None else _KIND_DEFAULTS[kind]
    extra: dict[str, Any] = {}
    for key, value in table.items():
        expected = _FIELDS.get(key)
        if expected is None:
            extra[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, expected):
            raise RegistryError(f"{where}.{key} has the wrong type ({type(value).__name__})")
        values[key] = value
    values["guidance"] = float(values["guidance"])
    for key in ("steps", "width", "height", "max_steps", "max_count"):
        if values[key] < 1:
            raise RegistryError(f"{where}.{key} must be positive")
    for key in ("width", "height"):
        if values[key] % 8:
            raise RegistryError(f"{where}.{key} must be a multiple of 8")
    if values["steps"] > values["max_steps"]:
        raise RegistryError(f"{where}.steps exceeds max_steps")
    # A1111's sampler names ("DPM++ 2M Karras") are accepted beside the scheduler names.
    if scheduler_key(values["scheduler"]) is None:
        raise RegistryError(
            f"{where}.scheduler = {values['scheduler']!r} is not one of {', '.join(SCHEDULERS)} "
            f"or an A1111 sampler name ({', '.join(A1111_SAMPLERS)})"
        )
    values["scheduler"] = scheduler_key(values["scheduler"])
    if values["timestep_spacing"] is not None and values["timestep_spacing"] not in _SPACINGS:
        raise RegistryError(f"{where}.timestep_spacing must be one of {', '.join(_SPACINGS)}")
    if kind == "sd3" and values["scheduler"] != "default":
        # SD 3 is a rectified-flow model: only its own flow-matching scheduler fits it.
        raise RegistryError(f"{where}.scheduler must be \"default\" for sd3 (its flow-matching Euler)")
    values["source"] = _resolve_source(path, values["source"])
    for key in ("unet_repo", "stage_2", "detector", "vae", "config"):
        if isinstance(extra.get(key), str):
            extra[key] = _resolve_source(path, extra[key])
    _check_checkpoint_options(where, kind, family, extra, single_file or {})
    return ModelSpec(name=name, extra=extra, **values)


def _is_file_source(source: str) -> bool:
    return source.lower().endswith((checkpoints.SUFFIX, *checkpoints.PICKLED_SUFFIXES))


def _checkpoint_family(where: str, source: str) -> str:
    path = Path(source)
    if not path.is_file():
        raise RegistryError(f"{where}.source: no such file: {source}")
    try:
        return checkpoints.detect(path)
    except checkpoints.CheckpointError as exc:
        raise RegistryError(f"{where}.source: {exc}") from None


def _check_checkpoint_options(where: str, kind: str, family: str | None, extra: dict[str, Any],
                              configs: Mapping[str, str]) -> None:
    """A single file's kind must fit its family, and it needs the diffusers config of that family;
    ``vae`` and ``clip_skip`` must be something the engine can honour."""
    if family is not None:
        if kind not in checkpoints.FAMILY_KINDS[family]:
            raise RegistryError(f"{where}.kind = {kind!r} but the file is an {checkpoints.FAMILY_NAMES[family]} "
                                f"checkpoint (kind {' or '.join(checkpoints.FAMILY_KINDS[family])})")
        config = extra.get("config")
        if config is not None and not isinstance(config, str):
            raise RegistryError(f"{where}.config must be a diffusers folder or a hub id")
        extra["config"] = config or configs.get(family) or checkpoints.DEFAULT_CONFIGS[family]
        extra["family"] = family
    vae = extra.get("vae")
    if vae is not None:
        if not isinstance(vae, str) or not vae:
            raise RegistryError(f"{where}.vae must be a .safetensors file, a diffusers folder or a hub id")
        if kind not in VAE_KINDS:
            raise RegistryError(f"{where}.vae: a separate VAE is only supported for {', '.join(VAE_KINDS)} models")
        if vae.lower().endswith(checkpoints.PICKLED_SUFFIXES):
            raise RegistryError(f"{where}.vae: pickled files are never loaded; use the VAE's .safetensors release")
        if vae.lower().endswith(checkpoints.SUFFIX) and not Path(vae).is_file():
            raise RegistryError(f"{where}.vae: no such file: {vae}")
    clip_skip = extra.get("clip_skip")
    if clip_skip is not None:
        if isinstance(clip_skip, bool) or clip_skip not in (1, 2):
            raise RegistryError(f"{where}.clip_skip must be 1 (the last CLIP layer) or 2 (the one before, as "
                                "many anime SD 1.5 checkpoints want)")
        if kind not in ("sd15", "sd2"):
            raise RegistryError(f"{where}.clip_skip only applies to SD 1.x/2.x models (SDXL always uses the "
                                "penultimate layer)")


# Top-level key of a user's file: false serves that file's models alone.
_PACKAGED_KEY = "packaged"


def _read_tables(toml_path: Path) -> tuple[dict[str, tuple[Path, dict[str, Any]]], str | None, dict[str, str], bool]:
    """One registry file: its [models.NAME] tables (each with the file it came from), its default,
    its ``[single_file]`` configs (family -> config folder or hub id) and whether it keeps the packaged models."""
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegistryError(f"{toml_path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"{toml_path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{toml_path}: malformed TOML ({exc})") from None
    models = data.get("models", {})
    if not isinstance(models, dict) or (not models and toml_path == DEFAULT_TOML):
        raise RegistryError(f"{toml_path}: key 'models' must hold [models.NAME] tables")
    for name, table in models.items():
        if not isinstance(table, dict):
            raise RegistryError(f"{toml_path}: models.{name} must be a table")
        if "disabled" in table and not isinstance(table["disabled"], bool):
            raise RegistryError(f"{toml_path}: models.{name}.disabled must be true or false")
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise RegistryError(f"{toml_path}: key 'default' must be a model name")
    packaged = data.get(_PACKAGED_KEY, True)
    if not isinstance(packaged, bool):
        raise RegistryError(f"{toml_path}: key '{_PACKAGED_KEY}' must be true or false")
    configs = data.get("single_file", {})
    if not isinstance(configs, dict) or any(k not in checkpoints.FAMILY_KINDS or not isinstance(v, str)
                                            for k, v in configs.items()):
        raise RegistryError(f"{toml_path}: [single_file] maps {' and '.join(checkpoints.FAMILY_KINDS)} to a "
                            "config folder or hub id")
    configs = {family: _resolve_source(toml_path, value) for family, value in configs.items()}
    return {name: (toml_path, table) for name, table in models.items()}, default, configs, packaged


def _add_checkpoints(tables: dict[str, tuple[Path, dict[str, Any]]], folder: Path) -> None:
    """A table per checkpoint in ``folder`` whose name no table has yet, with its family's defaults."""
    if not folder.is_dir():
        raise RegistryError(f"ATELIER_MODELS_DIR: no such folder: {folder}")
    taken = {_resolve_source(where, t["source"]) for where, t in tables.values() if isinstance(t.get("source"), str)}
    for name, (path, family) in checkpoints.scan(folder).items():
        if name in tables or str(path.resolve()) in taken:
            log.info("ATELIER_MODELS_DIR: %s is already a model in the registry", path)
            continue
        tables[name] = (folder / "models.toml", {
            "kind": family, "source": str(path.resolve()),
            "description": f"{checkpoints.FAMILY_NAMES[family]} checkpoint {path.name}"[:100]})


def _resolve_source(toml_path: Path, source: str) -> str:
    """Relative paths are relative to the TOML's folder; anything else that is not a folder is a hub id.

    A hub id looks like ``owner/name``, which is also a valid relative path, so a relative source
    only becomes a path when that folder exists next to the TOML (or starts with ``./``/``../``).
    """
    candidate = Path(source).expanduser()
    if candidate.is_absolute():
        return str(candidate)
    local = toml_path.parent / candidate
    if source.startswith((".", "~")) or local.exists():
        return str(local.resolve())
    return source
