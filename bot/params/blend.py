"""/blend and /imagine style_ref: image prompts through the model family's IP-Adapter
(inference/ipadapter.py). Pure builders: checked /imagine parameters and already-loaded images
become a job's parameters; the reference images travel as base64 (``ip_images``) and the job
service stores them apart from the job row, like any input image (bot/services/inputs.py)."""

from __future__ import annotations

import asyncio
import hashlib
import math
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps

from bot.errors import InvalidOption
from bot.params.attachments import InputImage, encode_for_job
from inference.limits import BLEND_IMAGES, BLEND_SCALE, IP_WEIGHT_RANGE, STYLE_WEIGHT_RANGE
from inference.lora import FAMILY_NAMES, kind_family
from inference.models import SD_KINDS

if TYPE_CHECKING:
    from inference.models import ModelRegistry, ModelSpec

# /blend without a prompt: the image-variation prompt of diffusers' IP-Adapter guide.
DEFAULT_PROMPT = "best quality, high quality"
# Reference images are stored at most this size: the image encoders read 224 px.
REFERENCE_SIDE = 512


def check_model(registry: ModelRegistry, spec: ModelSpec, *, what: str) -> None:
    """``spec`` must be SD 1.5 or SDXL with an IP-Adapter for its family installed."""
    if spec.kind not in SD_KINDS:
        raise InvalidOption(f"{what} works with SD 1.5 and SDXL models; {spec.name} is a {spec.kind} model. "
                            "Choose another `model`.")
    family = kind_family(spec.kind)
    named = spec.extra.get("ip_adapter")
    if named and named in registry:
        return
    if not any(s.kind == "ip-adapter" and s.extra.get("serves") == family for s in registry.specs()):
        raise InvalidOption(f"{what} needs an IP-Adapter for {FAMILY_NAMES.get(family or '', spec.kind)} models, "
                            "and none is installed on this bot; ask its owner to add one to models.toml.")


def parse_weights(text: str | None, count: int) -> list[float]:
    """``"1, 0.5, 2"`` -> one weight per image (all 1 when omitted)."""
    if text is None or not text.strip():
        return [1.0] * count
    parts = [part.strip() for part in text.replace(";", ",").replace(" ", ",").split(",") if part.strip()]
    if len(parts) != count:
        raise InvalidOption(f"`weights` has {len(parts)} number{'s' * (len(parts) != 1)} for {count} images; "
                            f"give one per image, e.g. `{', '.join(['1'] * count)}`.")
    low, high = IP_WEIGHT_RANGE
    weights: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise InvalidOption(f"`weights`: {part[:20]!r} is not a number; use numbers from {low:g} to {high:g}, "
                                "separated by commas.") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise InvalidOption(f"`weights`: each weight must be {low:g}-{high:g}; you gave {part[:20]}.")
        weights.append(value)
    if sum(weights) <= 0:
        raise InvalidOption("`weights`: at least one image needs a weight above 0.")
    return weights


def check_style_weight(weight: float | None, *, has_reference: bool) -> float | None:
    if weight is None:
        return None
    if not has_reference:
        raise InvalidOption("`style_weight` only applies with a `style_ref` image: attach one, or leave it out.")
    low, high = STYLE_WEIGHT_RANGE
    if not (math.isfinite(weight) and low <= weight <= high):
        raise InvalidOption(f"Style weight must be {low:g}-{high:g}; you asked for {weight:g}.")
    return float(weight)


def _reference(image: Image.Image) -> str:
    fitted = ImageOps.contain(image, (REFERENCE_SIDE, REFERENCE_SIDE), Image.Resampling.LANCZOS)
    return encode_for_job(fitted)


def _fingerprint(image: Image.Image) -> str:
    return hashlib.sha256(image.tobytes() + repr(image.size).encode()).hexdigest()


def check_distinct(images: list[InputImage], names: list[str]) -> None:
    """The same picture twice would be a blend of one; name the two options that repeat."""
    seen: dict[str, str] = {}
    for name, image in zip(names, images, strict=True):
        key = _fingerprint(image.image)
        if key in seen:
            raise InvalidOption(f"`{seen[key]}` and `{name}` are the same picture; a blend needs different images.")
        seen[key] = name


async def blend_params(params: dict[str, Any], images: list[InputImage], weights: list[float]) -> dict[str, Any]:
    """Checked /imagine parameters turned into a blend of ``images`` (2-5) by ``weights``."""
    low, high = BLEND_IMAGES
    if not low <= len(images) <= high:
        raise InvalidOption(f"A blend takes {low} to {high} images; you attached {len(images)}.")
    encoded = await asyncio.to_thread(lambda: [_reference(image.image) for image in images])
    return {**params, "ip_images": encoded, "ip_weights": weights, "ip_mode": "blend", "ip_scale": BLEND_SCALE,
            "source": {"blend": [image.filename[:100] for image in images]}}


async def style_params(params: dict[str, Any], image: InputImage, weight: float) -> dict[str, Any]:
    """/imagine parameters that keep the style of ``image`` at ``weight``."""
    return {**params, "ip_images": [await asyncio.to_thread(_reference, image.image)], "ip_weights": [1.0],
            "ip_mode": "style", "ip_scale": weight, "style_ref": image.filename[:100]}


def describe_reference(params: dict[str, Any]) -> str | None:
    """The embed's words for a job's image prompt; None without one."""
    if params.get("ip_mode") == "blend":
        names = (params.get("source") or {}).get("blend") or []
        weights = params.get("ip_weights") or []
        return "Blend of " + ", ".join(f"{name} ({float(w):g})" for name, w in zip(names, weights, strict=False))
    if params.get("ip_mode") == "style":
        return f"Style of {params.get('style_ref', 'your image')} at {float(params.get('ip_scale', 1)):g}"
    return None
