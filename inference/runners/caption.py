"""/describe: four prompts that would draw an image, from a captioning model (``caption`` kind, BLIP
through transformers) and, for anime pictures, Danbooru tags from a WD14-style tagger (``tagger``
kind, an ONNX model run by onnxruntime).

The job's file is the input image itself (so the result shows what was described, and the image
check of every result screens it) with the four prompts, one a line, as its ``parameters`` text:
they are stored with the job's output, which is what the prompt buttons read back after a restart.

Four distinct captions come from one beam search (its four best beams, deterministic), topped
up with seeded nucleus samples where beams decode to the same text. A picture is "anime" when the
member says so (``anime: on``), or, on ``auto``, when the tagger finds at least
``ANIME_MIN_TAGS`` general tags above its threshold and no photo cue (``realistic``,
``photorealistic``, ``photo_(medium)``): the WD taggers were trained on Danbooru illustrations, so
confident general tags without a photo cue are the sign of one.
"""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

from inference import hub
from inference.limits import ANIME_MIN_TAGS, CHARACTER_THRESHOLD, DESCRIBE_PROMPTS, TAG_THRESHOLD
from inference.media import decode_job_image, encode_png
from inference.models import ModelSpec, RequestRefused
from inference.runners.base import stop_if_cancelled, wrong_kind
from inference.types import GeneratedImage, GenerationRequest, GenerationResult, JobCancelled

if TYPE_CHECKING:
    from inference.engine import Engine

log = logging.getLogger(__name__)

PHOTO_TAGS = frozenset({"realistic", "photorealistic", "photo_(medium)"})
# Tags a prompt gains nothing from (the tagger's own bookkeeping).
_SKIP_TAGS = frozenset({"virtual_youtuber"})
# The tag image side when the ONNX file leaves it dynamic (WD v3 takes 448 px).
_DEFAULT_SIDE = 448


@dataclass
class Captioner:
    model: Any
    processor: Any
    device: str


@dataclass
class Tagger:
    session: Any
    names: list[str]
    categories: list[int]
    side: int


@dataclass
class Tags:
    general: list[tuple[str, float]]
    characters: list[tuple[str, float]]
    rating: str

    def looks_anime(self) -> bool:
        names = {name for name, _ in self.general}
        return len(self.general) >= ANIME_MIN_TAGS and not names & PHOTO_TAGS

    def prompt(self, limit: int = 24) -> str:
        """Danbooru tags as Animagine-style prompts write them: characters first, spaces for underscores."""
        chosen = [name for name, _ in self.characters] + [name for name, _ in self.general[:limit]]
        return ", ".join(_readable(name) for name in chosen)


def _readable(tag: str) -> str:
    # Short tags such as ^_^ keep their underscores; escaped brackets keep A1111 from reading weights.
    text = tag.replace("_", " ") if len(tag) > 3 else tag
    return text.replace("(", r"\(").replace(")", r"\)")


def _folder(spec: ModelSpec) -> Path:
    """The local folder of a captioner or tagger entry (downloaded on first use when it is a hub id)."""
    if not hub.is_hub_id(spec.source):
        return Path(spec.source)
    if spec.kind == "tagger":
        found = [hub.fetch_file(spec.name, spec.source, name) for name in hub.helper_files(spec)]
        return found[0].parent
    return hub.fetch_pipeline(spec.name, spec.source, variant=None)[0]


def load_captioner(spec: ModelSpec, device: str) -> Captioner:
    from transformers import BlipForConditionalGeneration, BlipProcessor

    folder = _folder(spec)
    dtype = torch.float32 if torch.device(device).type == "cpu" else torch.float16
    model = BlipForConditionalGeneration.from_pretrained(folder, dtype=dtype).to(device).eval()
    return Captioner(model, BlipProcessor.from_pretrained(folder), device)


def load_tagger(spec: ModelSpec, device: str) -> Tagger:
    import onnxruntime

    folder = _folder(spec)
    providers = (["CUDAExecutionProvider", "CPUExecutionProvider"] if torch.device(device).type == "cuda"
                 else ["CPUExecutionProvider"])
    available = set(onnxruntime.get_available_providers())
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"),
                                           providers=[p for p in providers if p in available])
    with (folder / "selected_tags.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    side = session.get_inputs()[0].shape[1]
    return Tagger(session, [row["name"] for row in rows], [int(row["category"]) for row in rows],
                  side if isinstance(side, int) else _DEFAULT_SIDE)


def captions(captioner: Captioner, image: Image.Image, *, count: int, seed: int, max_new_tokens: int) -> list[str]:
    """``count`` distinct captions: the best beams, then seeded samples until there are enough."""
    inputs = captioner.processor(images=image.convert("RGB"), return_tensors="pt").to(captioner.device)
    inputs["pixel_values"] = inputs["pixel_values"].to(captioner.model.dtype)
    found: list[str] = []

    def add(outputs: torch.Tensor) -> None:
        for row in outputs:
            text = " ".join(captioner.processor.decode(row, skip_special_tokens=True).split())
            if text and text not in found and len(found) < count:
                found.append(text)

    with torch.inference_mode():
        add(captioner.model.generate(**inputs, num_beams=max(count * 2, 4), num_return_sequences=count,
                                     max_new_tokens=max_new_tokens, repetition_penalty=1.2))
        # Sampling draws from torch's default generator: seeded inside a forked RNG state, so the
        # job is reproducible and nothing else in the process sees its seed.
        for attempt in range(4):
            if len(found) >= count:
                break
            with torch.random.fork_rng(devices=[captioner.device] if captioner.device.startswith("cuda") else []):
                torch.manual_seed(seed + attempt)
                add(captioner.model.generate(**inputs, do_sample=True, top_p=0.9, num_return_sequences=count,
                                             max_new_tokens=max_new_tokens))
    return found


def tags(tagger: Tagger, image: Image.Image) -> Tags:
    """The tagger's reading: general and character tags above their thresholds, best first, and the rating."""
    side = tagger.side
    canvas = Image.new("RGB", (max(image.size),) * 2, (255, 255, 255))  # padded square, white, as WD expects
    rgb = image.convert("RGB")
    canvas.paste(rgb, ((canvas.width - rgb.width) // 2, (canvas.height - rgb.height) // 2))
    pixels = np.asarray(canvas.resize((side, side), Image.Resampling.BICUBIC), dtype=np.float32)[:, :, ::-1]
    session = tagger.session
    scores = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(pixels[None])})[0][0]
    general, characters, ratings = [], [], []
    for name, category, score in zip(tagger.names, tagger.categories, scores.tolist(), strict=True):
        if category == 9:
            ratings.append((name, score))
        elif category == 4 and score >= CHARACTER_THRESHOLD:
            characters.append((name, score))
        elif category != 4 and score >= TAG_THRESHOLD and name not in _SKIP_TAGS:
            general.append((name, score))
    general.sort(key=lambda item: -item[1])
    characters.sort(key=lambda item: -item[1])
    rating = max(ratings, key=lambda item: item[1])[0] if ratings else "general"
    return Tags(general, characters, rating)


def compose(found: list[str], reading: Tags | None, count: int = DESCRIBE_PROMPTS) -> list[str]:
    """The job's prompts: the captions, or for an anime picture two captions, the tags alone and the
    best caption followed by its tags."""
    if reading is None or not (reading.general or reading.characters):
        return found[:count]
    tagged = reading.prompt()
    prompts = [*found[: count - 2], tagged, f"{found[0]}, {reading.prompt(limit=10)}" if found else tagged]
    return list(dict.fromkeys(prompts))[:count]


def describe(engine: Engine, spec: ModelSpec, request: GenerationRequest) -> tuple[list[str], Tags | None]:
    image = decode_job_image(request.init_image or "")
    captioner = engine.cache.companion((spec.name, engine.device), None, lambda: load_captioner(spec, engine.device))
    found = captions(captioner, image, count=DESCRIBE_PROMPTS, seed=request.seed,
                     max_new_tokens=int(spec.extra.get("max_new_tokens", 40)))
    mode = str(request.extra.get("anime", "auto"))
    tagger_name = request.extra.get("tagger")
    reading = None
    if tagger_name and mode != "off":
        tagger_spec = engine.registry.get(str(tagger_name))
        tagger = engine.cache.companion((tagger_spec.name, engine.device), None,
                                        lambda: load_tagger(tagger_spec, engine.device))
        reading = tags(tagger, image)
        if mode == "auto" and not reading.looks_anime():
            reading = None
    return found, reading


def handle(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: Any, is_cancelled: Any
           ) -> GenerationResult:
    if request.task != "describe":
        raise wrong_kind(spec, request)
    if not request.init_image:
        raise RequestRefused("/describe needs an image")
    stop_if_cancelled(request, is_cancelled)
    started = time.perf_counter()
    found, reading = describe(engine, spec, request)
    if is_cancelled is not None and is_cancelled():
        raise JobCancelled(request.job_id, 1)
    if on_step is not None:
        on_step(1, 1)
    prompts = compose(found, reading)
    if not prompts:
        raise RequestRefused(f"{spec.name} found nothing to say about this image")
    image = decode_job_image(request.init_image)
    text = "\n".join(prompts)
    return GenerationResult(job_id=request.job_id,
                            images=[GeneratedImage(encode_png(image, text), request.seed, image.width, image.height)],
                            grid_png=None, run_seconds=time.perf_counter() - started, parameters=text,
                            notes=[])


def refuse_alone(engine: Engine, spec: ModelSpec, request: GenerationRequest, on_step: Any, is_cancelled: Any
                 ) -> GenerationResult:
    """Taggers and IP-Adapters serve other models' jobs (/describe, /blend, style_ref), never one of their own."""
    raise RequestRefused(f"{spec.name} is a {spec.kind} model; it helps other models' jobs and runs none itself")
