"""The /imagine checks: every option against the installed models' limits -> a job's parameters.

Fast, and no database: they run before the interaction is deferred, so a wrong option is refused
privately before a job exists. A named LoRA's file header is read from the owner's folder. The job
service offers them as `JobService.prepare_imagine`; /anime, /pose and image-to-image build on
them (bot/params/imagine.py).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from bot.errors import InvalidOption
from bot.params import styles, wildcards
from bot.params.imagine import ImagineOptions
from inference import embeddings as tis
from inference import lora as loras
from inference.limits import (
    DEFAULT_HIRES_STRENGTH,
    HIRES_FACTORS,
    MAX_CANVAS_SIDE,
    MAX_GUIDANCE,
    MAX_LORA_WEIGHT,
    MAX_STRENGTH,
    MIN_LORA_WEIGHT,
    MIN_STRENGTH,
    SEED_LIMIT,
    SIZE_MULTIPLE,
)
from inference.models import (
    ASPECTS,
    TEXT_TO_IMAGE_KINDS,
    ModelRegistry,
    ModelSpec,
    RequestRefused,
    UnknownAspect,
    UnknownModel,
    fit_scheduler,
    validate_request_options,
)

MAX_PROMPT = 2000
MAX_NEGATIVE = 1000
MAX_LORAS = 3
# A1111's prompt syntax for extra networks: <lora:name> or <lora:name:weight> (<lyco:...> too).
_LORA_TAG = re.compile(r"<(?:lora|lyco):([^:<>]+)(?::([^:<>]*))?(?::[^<>]*)?>", re.IGNORECASE)


def imagine_params(registry: ModelRegistry, options: ImagineOptions) -> dict[str, Any]:
    """Check every option against the model's limits; return request parameters (no job id)."""
    # A1111's <lora:name:weight> typed in the prompt is applied like the `lora` option, or refused:
    # left in the text it would be drawn from as words and recorded as if it had been applied.
    prompt, typed_loras = prompt_loras((options.prompt or "").strip())
    if not prompt:
        raise InvalidOption("The prompt is empty: describe what you want to see.")
    if len(prompt) > MAX_PROMPT:
        raise InvalidOption(f"The prompt is {len(prompt)} characters; the limit is {MAX_PROMPT}.")
    negative = (options.negative or "").strip()
    if len(negative) > MAX_NEGATIVE:
        raise InvalidOption(f"The negative prompt is {len(negative)} characters; the limit is {MAX_NEGATIVE}.")
    spec = model_spec(registry, options.model)
    spec, fast_steps = _quality(registry, spec, options)
    try:
        width, height = spec.size_for_aspect(options.aspect or "1:1")
    except UnknownAspect:
        raise InvalidOption(f"Unknown aspect {options.aspect!r}; choose one of {', '.join(ASPECTS)}.") from None
    steps = spec.steps if options.steps is None else options.steps
    steps = fast_steps or steps
    _within_limits(spec, steps=steps)
    guidance = spec.guidance if options.guidance is None else options.guidance
    if not 0.0 <= guidance <= MAX_GUIDANCE:
        raise InvalidOption(f"Guidance must be between 0 and {MAX_GUIDANCE:g}; you asked for {guidance:g}.")
    _within_limits(spec, count=options.count)
    seed = options.seed
    if seed is None or seed < 0:
        seed = secrets.randbelow(SEED_LIMIT)
    elif seed >= SEED_LIMIT:
        raise InvalidOption(f"Seed must be between 0 and {SEED_LIMIT - 1}; you gave {seed}.")
    style = styles.find(options.style, options.server_styles) if options.style else None
    template, negative = style.apply(prompt, negative) if style else (prompt, negative)
    # The seed picks the variants of {a|b} and __wildcards__; the template stays for rerolls.
    resolved = wildcards.resolve(template, seed, options.wildcards_dir)
    if len(resolved) > MAX_PROMPT + styles.MAX_TEMPLATE:
        raise InvalidOption(f"With its wildcards and style the prompt is {len(resolved)} characters; the limit is "
                            f"{MAX_PROMPT + styles.MAX_TEMPLATE}. Pick fewer or shorter variants.")
    params: dict[str, Any] = {
        "model": spec.name, "prompt": resolved, "negative_prompt": negative, "width": width, "height": height,
        "steps": steps, "guidance": float(guidance), "seed": seed, "count": options.count,
        "scheduler": spec.scheduler, "aspect": options.aspect or "1:1",
    }
    if resolved != template:
        params["prompt_template"] = template
    if style is not None:
        params["style"] = style.name
    if options.quality == "fast":
        params["quality"] = "fast"
    params.update(_hires(options, width, height))
    if options.tile:
        params["tile"] = True
    chosen = _lora_choice(options, spec)
    for tag, name, weight in typed_loras:
        if any(found == name for found, _ in chosen):
            raise InvalidOption(f"`{tag}` names a LoRA this job already uses; name each LoRA once.")
        chosen += _checked_lora(name, weight, options.lora_dir, spec, typed=tag)
    if len(chosen) > MAX_LORAS:
        raise InvalidOption(f"A job takes at most {MAX_LORAS} LoRAs; this one names {len(chosen)}.")
    if chosen:
        params["loras"] = chosen
    if options.sampler:
        try:
            params["scheduler"] = fit_scheduler(spec, options.sampler,
                                                lcm_lora=any("lcm" in name.lower() for name, _ in chosen))
        except RequestRefused as exc:
            raise InvalidOption(f"{exc}.") from None
    used = embeddings_in(options.embeddings_dir, resolved, negative)
    if used:
        check_embeddings(options.embeddings_dir, used, spec)
        params["embeddings"] = used
    return params


def check_embeddings(folder: Path | None, used: list[str], spec: ModelSpec) -> None:
    """Refuse textual-inversion embeddings ``used`` (names in ``folder``) that ``spec`` can't take: a
    model without them, or an embedding whose file says it is for the other family."""
    if not used or folder is None:
        return
    if spec.kind not in loras.LORA_KINDS:
        raise InvalidOption(f"{spec.name} does not take textual-inversion embeddings ({', '.join(used)}); "
                            "choose an SD 1.5 or SDXL model.")
    _check_embedding_families(folder, used, spec)


def reresolve(params: dict[str, Any], wildcards_dir: Path | None, embeddings_dir: Path | None) -> dict[str, Any]:
    """A reroll's parameters: the prompt template resolved again with the (new) seed, and the
    embeddings that prompt uses."""
    prompt = wildcards.resolve(params["prompt_template"], int(params["seed"]), wildcards_dir)
    params = {**params, "prompt": prompt}
    params.pop("embeddings", None)
    used = embeddings_in(embeddings_dir, prompt, params.get("negative_prompt", ""))
    return {**params, "embeddings": used} if used else params


def _check_embedding_families(folder: Path, names: list[str], spec: ModelSpec) -> None:
    """Refuse an embedding whose file says it is for the other family (the worker checks the rest)."""
    library = tis.library(str(folder))
    family = loras.kind_family(spec.kind)
    for name in names:
        made_for = tis.family_hint(library.path(name))
        if made_for is not None and family is not None and made_for != family:
            raise InvalidOption(f"The embedding {name!r} is made for {loras.FAMILY_NAMES[made_for]} models and "
                                f"{spec.name} is {loras.FAMILY_NAMES[family]}; remove it or choose another model.")


def embeddings_in(folder: Path | None, *texts: str) -> list[str]:
    """The names of the folder's textual-inversion embeddings that the texts use, in the folder's order."""
    if folder is None:
        return []
    return tis.library(str(folder)).used_in(*texts)


def hires_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """The size a hires fix delivers: the first pass's size times ``factor``, each side rounded down to
    a multiple of 8 (as the runner enlarges it)."""
    return (int(width * factor) // SIZE_MULTIPLE * SIZE_MULTIPLE,
            int(height * factor) // SIZE_MULTIPLE * SIZE_MULTIPLE)


def _hires(options: ImagineOptions, width: int, height: int) -> dict[str, Any]:
    """The hires fix's request parameters ({} when off), or a refusal naming what is wrong."""
    if options.hires is None:
        if options.hires_strength is not None:
            raise InvalidOption("`hires_strength` only applies with `hires`: choose hires 1.5 or 2, or leave "
                                "hires_strength out.")
        return {}
    if float(options.hires) not in HIRES_FACTORS:
        raise InvalidOption(f"Hires must be {' or '.join(f'{f:g}' for f in HIRES_FACTORS)}; you asked for "
                            f"{options.hires:g}.")
    strength = DEFAULT_HIRES_STRENGTH if options.hires_strength is None else float(options.hires_strength)
    if not MIN_STRENGTH <= strength <= MAX_STRENGTH:
        raise InvalidOption(f"Hires strength must be {MIN_STRENGTH:g}-{MAX_STRENGTH:g}; you asked for {strength:g}.")
    final = hires_size(width, height, float(options.hires))
    if max(final) > MAX_CANVAS_SIDE:
        raise InvalidOption(f"Hires {options.hires:g} would make this image {final[0]}×{final[1]}; images stop at "
                            f"{MAX_CANVAS_SIDE} pixels on a side. Choose hires 1.5 or a smaller aspect.")
    return {"hires": float(options.hires), "hires_strength": strength}


def _within_limits(spec: ModelSpec, *, steps: int | None = None, count: int | None = None) -> None:
    """The model's steps and count limits, as the worker checks them, refused as an option error."""
    try:
        validate_request_options(spec, steps=steps, count=count)
    except RequestRefused as exc:
        raise InvalidOption(f"{exc}.") from None


def _quality(registry: ModelRegistry, spec: ModelSpec, options: ImagineOptions) -> tuple[ModelSpec, int | None]:
    """``quality: fast``: the model's distilled sibling at its own steps and guidance where the
    registry names one (``fast = "sdxl-lightning"``), else this model at half its steps."""
    if options.quality in (None, "standard"):
        return spec, None
    if options.quality != "fast":
        raise InvalidOption(f"Unknown quality {options.quality!r}; choose standard or fast.")
    if options.steps is not None:
        raise InvalidOption("`quality: fast` picks its own steps; leave `steps` empty or choose standard.")
    sibling = spec.extra.get("fast")
    if sibling:
        fast = model_spec(registry, str(sibling))
        return fast, fast.steps
    return spec, max(4, (spec.steps + 1) // 2)


def model_spec(registry: ModelRegistry, name: str | None, *, kinds: tuple[str, ...] = TEXT_TO_IMAGE_KINDS) -> ModelSpec:
    """The named model (or the default) among those of `kinds`; the error lists only those."""
    valid = [spec.name for spec in registry.specs() if spec.kind in kinds]
    if not name:
        default = registry.default
        if default.kind in kinds:
            return default
        if not valid:
            raise InvalidOption("No model of that kind is installed; ask the bot's owner.")
        return registry.get(valid[0])
    try:
        spec = registry.get(name)
    except UnknownModel:
        spec = None
    if spec is None or spec.kind not in kinds:
        raise InvalidOption(f"Unknown model {name!r}; choose one of: {', '.join(valid)}.")
    return spec


def _lora_choice(options: ImagineOptions, spec: ModelSpec) -> list[list[Any]]:
    """The job's [[name, weight]] LoRA list (``lora``, ``lora2``, ``lora3``), checked against the
    folder and the model's family.

    The worker checks again (its folder may differ, and it knows the model's exact width); this
    check is what lets a wrong name or family be refused privately, before a job exists."""
    chosen: list[list[Any]] = []
    for option, name, weight in (("lora", options.lora, options.lora_weight),
                                 ("lora2", options.lora2, options.lora2_weight),
                                 ("lora3", options.lora3, options.lora3_weight)):
        name = (name or "").strip()
        if not name:
            if weight is not None:
                what = "a LoRA weight" if option == "lora" else f"`{option}_weight`"
                raise InvalidOption(f"You set {what} but no LoRA; pick one in the `{option}` option.")
            continue
        checked = _checked_lora(name, loras.DEFAULT_WEIGHT if weight is None else float(weight),
                                options.lora_dir, spec)
        if any(found == checked[0][0] for found, _ in chosen):
            raise InvalidOption(f"`{option}` names a LoRA this job already uses; name each LoRA once.")
        chosen += checked
    return chosen


def _checked_lora(name: str, weight: float, lora_dir: Path | None, spec: ModelSpec, *, typed: str | None = None
                  ) -> list[list[Any]]:
    """[[name, weight]] for a LoRA that exists and fits the model; ``typed``: the prompt tag it came from."""
    where = f"`{typed}` in your prompt: " if typed else ""
    if lora_dir is None:
        raise InvalidOption(f"{where}LoRAs are not available here (the bot's owner has not set ATELIER_LORA_DIR, "
                            "or this command takes none); remove it." if typed else
                            "LoRAs are turned off on this bot (its owner has not set ATELIER_LORA_DIR).")
    if spec.kind not in loras.LORA_KINDS:
        raise InvalidOption(f"{where}{spec.name} does not take LoRAs; choose an SD 1.5 or SDXL model.")
    try:
        found = loras.library(str(lora_dir)).resolve(name)
        loras.check_weight(weight)
        made_for = loras.family_hint(loras.read_header(found.path))
    except loras.LoraError as exc:
        raise InvalidOption(f"{where}{exc}") from None
    except (OSError, ValueError):
        raise InvalidOption(f"LoRA {name!r} is not a readable .safetensors file; tell the bot's owner.") from None
    family = loras.kind_family(spec.kind)
    if made_for is not None and family is not None and made_for != family:
        raise InvalidOption(f"LoRA {name!r} is made for {loras.FAMILY_NAMES[made_for]} models and {spec.name} is "
                            f"{loras.FAMILY_NAMES[family]}; choose a {loras.FAMILY_NAMES[made_for]} model or "
                            "another LoRA.")
    return [[found.name, weight]]


def prompt_loras(prompt: str) -> tuple[str, list[tuple[str, str, float]]]:
    """The prompt without its ``<lora:name:weight>`` tags, and each tag as (tag, name, weight)."""
    found: list[tuple[str, str, float]] = []
    for match in _LORA_TAG.finditer(prompt):
        text = match[2].strip() if match[2] is not None else ""
        try:
            weight = float(text) if text else loras.DEFAULT_WEIGHT
            loras.check_weight(weight)
        except (ValueError, loras.LoraError):
            raise InvalidOption(f"`{match[0]}` in your prompt: the weight must be a number from {MIN_LORA_WEIGHT:g} "
                                f"to {MAX_LORA_WEIGHT:g}.") from None
        found.append((match[0], match[1].strip(), weight))
    stripped = re.sub(r"\s{2,}", " ", _LORA_TAG.sub(" ", prompt)).strip(" ,")
    return (stripped, found) if found else (prompt, [])
