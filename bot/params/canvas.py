"""Canvas edits as images and masks: Zoom Out, Pan, Vary (Region) and /edit.

Each edit is an inpainting job: a canvas (the full picture the runner redraws in) and a mask of the
same size, white where the model draws. Zoom Out shrinks the image into the centre of a canvas of
the same size and masks the border; a pan grows the canvas by PAN_GROWTH on one side and masks the
new strip. Both masks reach OVERLAP pixels into the old image: the model redraws that band too, so
the new part continues the old one instead of meeting it at a hard edge (the runner pastes the
unmasked pixels back exactly, with a soft seam of mask_blur pixels).

The model works at its own pixel budget at the canvas's aspect (``ModelSpec.size_for_canvas``);
the runner returns the canvas size. Pure PIL: no discord, no database. Decoding and encoding are blocking:
callers run these functions off the event loop.
"""

from __future__ import annotations

import base64
import io
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from PIL import Image, ImageDraw, ImageFilter, ImageOps

from bot.errors import InvalidOption
from bot.params.attachments import encode_for_job
from inference.limits import (
    DEFAULT_MASK_BLUR,
    MAX_CANVAS_SIDE,
    PAN_GROWTH,
    SEED_LIMIT,
    SIZE_MULTIPLE,
    ZOOM_FACTORS,
)

if TYPE_CHECKING:
    from inference.models import ModelSpec

Direction = Literal["left", "right", "up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right", "up", "down")
ARROWS: dict[Direction, str] = {"left": "⬅️", "right": "➡️", "up": "⬆️", "down": "⬇️"}
# How far (px) the mask of a zoom or pan reaches into the old image, so the seam itself is redrawn.
OVERLAP = 2 * DEFAULT_MASK_BLUR
# Zoom and pan borders are new content: drawn from noise. A region redraw keeps some of what was there.
BORDER_STRENGTH = 1.0
REGION_STRENGTH = 0.9
# A canvas's sides may differ by at most this factor: beyond it the model is asked for strips.
MAX_ASPECT = 4.0
# Vary (Region): a 3x3 grid, cells numbered 1-9 in reading order.
GRID = 3
CELL_NAMES = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")
# The preview's longest side: enough to see the picture in an ephemeral reply, small to upload.
PREVIEW_SIDE = 384
OUTLINE = (255, 196, 0)


@dataclass(slots=True)
class Canvas:
    """What the runner redraws: ``image`` (RGB) where ``mask`` (mode L, same size) is white."""

    image: Image.Image
    mask: Image.Image
    # What was done, for the embed and the job's parameters (e.g. {"op": "pan", "direction": "left"}).
    edit: dict[str, Any]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


def check_side(width: int, height: int, what: str) -> None:
    if max(width, height) > MAX_CANVAS_SIDE:
        raise InvalidOption(f"{what} would be {width}×{height} pixels; a canvas can be at most {MAX_CANVAS_SIDE} "
                            "pixels on a side. Start from a smaller image (Zoom Out keeps the size).")
    ratio = width / height
    if not 1 / MAX_ASPECT <= ratio <= MAX_ASPECT:
        raise InvalidOption(f"{what} would be {width}×{height} pixels, more than {MAX_ASPECT:g} times as long as it "
                            "is wide; pan along the other side first.")


def _soft_background(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The image stretched to ``size`` and blurred: colours for the masked border to start from."""
    small = image.resize((max(1, image.width // 16), max(1, image.height // 16)), Image.Resampling.BOX)
    return small.resize(size, Image.Resampling.BILINEAR).filter(ImageFilter.GaussianBlur(4))


def zoom_out(image: Image.Image, factor: float) -> Canvas:
    """The image shrunk by ``factor`` into the centre of a canvas of its own size; the border masked."""
    if factor not in ZOOM_FACTORS:
        raise InvalidOption(f"Zoom Out takes {' or '.join(f'{f:g}x' for f in ZOOM_FACTORS)}; not {factor:g}x.")
    width, height = image.size
    check_side(width, height, "The zoomed image")
    inner = (max(1, round(width / factor)), max(1, round(height / factor)))
    x, y = (width - inner[0]) // 2, (height - inner[1]) // 2
    canvas = _soft_background(image, image.size)
    canvas.paste(image.resize(inner, Image.Resampling.LANCZOS), (x, y))
    mask = Image.new("L", image.size, 255)
    keep = (x + OVERLAP, y + OVERLAP, x + inner[0] - OVERLAP, y + inner[1] - OVERLAP)
    if keep[2] > keep[0] and keep[3] > keep[1]:
        mask.paste(0, keep)
    return Canvas(canvas, mask, {"op": "zoom", "factor": factor})


def pan_growth(side: int) -> int:
    """How many pixels a pan adds to a side: PAN_GROWTH of it, in multiples of 8."""
    return max(SIZE_MULTIPLE, round(side * PAN_GROWTH / SIZE_MULTIPLE) * SIZE_MULTIPLE)


def pan(image: Image.Image, direction: Direction) -> Canvas:
    """The canvas grown by PAN_GROWTH towards ``direction``; the new strip (and OVERLAP px of the old
    image next to it) masked. The strip starts as the mirrored edge of the image, blurred."""
    if direction not in DIRECTIONS:
        raise InvalidOption(f"Unknown direction {direction!r}; choose one of {', '.join(DIRECTIONS)}.")
    width, height = image.size
    horizontal = direction in ("left", "right")
    grow = pan_growth(width if horizontal else height)
    size = (width + grow, height) if horizontal else (width, height + grow)
    check_side(*size, f"Panning {direction}")
    at = {"left": (grow, 0), "right": (0, 0), "up": (0, grow), "down": (0, 0)}[direction]
    # The strip: the image's edge band mirrored outwards, blurred (new content starts from its colours).
    if horizontal:
        band = image.crop((0, 0, min(grow, width), height) if direction == "left"
                          else (max(0, width - grow), 0, width, height))
        strip = ImageOps.mirror(band).resize((grow, height))
        strip_at = (0, 0) if direction == "left" else (width, 0)
    else:
        band = image.crop((0, 0, width, min(grow, height)) if direction == "up"
                          else (0, max(0, height - grow), width, height))
        strip = ImageOps.flip(band).resize((width, grow))
        strip_at = (0, 0) if direction == "up" else (0, height)
    canvas = Image.new("RGB", size)
    canvas.paste(strip.filter(ImageFilter.GaussianBlur(8)), strip_at)
    canvas.paste(image, at)
    mask = Image.new("L", size, 0)
    reach = {"left": (0, 0, grow + OVERLAP, height), "right": (width - OVERLAP, 0, size[0], height),
             "up": (0, 0, width, grow + OVERLAP), "down": (0, height - OVERLAP, width, size[1])}[direction]
    mask.paste(255, reach)
    return Canvas(canvas, mask, {"op": "pan", "direction": direction})


# ----- Vary (Region) -----

def cell_box(size: tuple[int, int], cell: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of grid cell ``cell`` (0-8, reading order) on an image of ``size``."""
    if not 0 <= cell < GRID * GRID:
        raise InvalidOption(f"There is no cell {cell + 1}; the grid has cells 1-{GRID * GRID}.")
    width, height = size
    row, col = divmod(cell, GRID)
    return (round(col * width / GRID), round(row * height / GRID),
            round((col + 1) * width / GRID), round((row + 1) * height / GRID))


def check_cells(cells: list[int]) -> list[int]:
    chosen = sorted(set(cells))
    if not chosen:
        raise InvalidOption("Pick at least one cell of the grid to redraw.")
    if len(chosen) == GRID * GRID:
        raise InvalidOption("All nine cells would redraw the whole image; use Reroll or Vary (Strong) for that, "
                            "or leave out the cells to keep.")
    for cell in chosen:
        cell_box((GRID, GRID), cell)
    return chosen


def region_mask(size: tuple[int, int], cells: list[int]) -> Image.Image:
    """White over the chosen cells."""
    mask = Image.new("L", size, 0)
    for cell in check_cells(cells):
        mask.paste(255, cell_box(size, cell))
    return mask


def region(image: Image.Image, cells: list[int]) -> Canvas:
    chosen = check_cells(cells)
    return Canvas(image.convert("RGB"), region_mask(image.size, chosen), {"op": "region", "cells": chosen})


def describe_cells(cells: list[int]) -> str:
    return ", ".join(f"{c + 1} ({CELL_NAMES[c]})" for c in sorted(cells))


def region_preview(png: bytes, cells: list[int]) -> bytes:
    """A small PNG of the image with the 3x3 grid drawn and numbered, the chosen cells outlined."""
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    scale = PREVIEW_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.LANCZOS)
    draw = ImageDraw.Draw(image)
    line = max(1, min(image.size) // 128)
    for cell in range(GRID * GRID):
        box = cell_box(image.size, cell)
        draw.rectangle(box, outline=(255, 255, 255), width=line)
        draw.text((box[0] + 4 * line, box[1] + 2 * line), str(cell + 1), fill=(255, 255, 255),
                  stroke_width=2, stroke_fill=(0, 0, 0))
    for cell in sorted(set(cells)):
        x0, y0, x1, y1 = cell_box(image.size, cell)
        draw.rectangle((x0 + line, y0 + line, x1 - line - 1, y1 - line - 1), outline=OUTLINE, width=3 * line)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# ----- seamless tiles -----

TILE_PREVIEW_SIDE = 1024


def tile_preview(data: bytes) -> bytes:
    """A 2x2 repeat of a tile (PNG, at most TILE_PREVIEW_SIDE px a side): its seams show at a glance."""
    with Image.open(io.BytesIO(data)) as opened:
        tile = opened.convert("RGB")
    width, height = tile.size
    sheet = Image.new("RGB", (2 * width, 2 * height))
    for x in (0, width):
        for y in (0, height):
            sheet.paste(tile, (x, y))
    scale = TILE_PREVIEW_SIDE / max(sheet.size)
    if scale < 1:
        sheet = sheet.resize((round(sheet.width * scale), round(sheet.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


# ----- /edit: a member's image and mask -----

def check_mask(image: Image.Image, mask: Image.Image) -> Image.Image:
    """The member's mask as a binary mode-L mask of the image's size (white = redraw), or a refusal
    that says what is wrong with it. A mask of the image's shape at another size is resized."""
    check_side(image.width, image.height, "The image")
    if mask.size != image.size:
        if abs(mask.width / mask.height - image.width / image.height) > 0.01 * image.width / image.height:
            raise InvalidOption(f"The mask is {mask.width}×{mask.height} pixels and the image {image.width}×"
                                f"{image.height}: they must have the same shape. Draw the mask over a copy of the "
                                "image.")
        mask = mask.resize(image.size, Image.Resampling.NEAREST)
    binary = mask.convert("L").point(lambda v: 255 if v >= 128 else 0)
    low, high = binary.getextrema()
    if high == 0:
        raise InvalidOption("The mask is all black, so nothing would be redrawn: paint white where the image "
                            "should change.")
    if low == 255:
        raise InvalidOption("The mask is all white, so the whole image would be redrawn: leave black what should "
                            "stay (or use /imagine with the image).")
    return binary


# ----- job parameters -----

# Keys of a source job's parameters that describe how that job ran, not what it drew: a canvas
# job sets its own (its task, input images, size) and drops the rest. Also dropped: what the inpaint
# runner (inference/runners/inpaint.py) does not honour, so that the edit's PNG, embed and stored
# inputs claim nothing that did not happen: a /blend or style_ref parent's IP-Adapter image prompts
# (``ip_*``, ``style_ref``: a Zoom Out of a blend redraws its border from the prompt alone; the
# inpainting models carry no IP-Adapter, and the base's would be a second adapter path to keep),
# hires fix, seamless tiles (an outpainted border breaks the wrap), ControlNet images, video and
# upscale settings and a training set. Kept, and honoured by the runner: prompt, negative prompt,
# model, steps, guidance, sampler, LoRAs and embeddings.
_SOURCE_ONLY = ("task", "strength", "inputs", "init_image", "control_image", "control_scale", "mask_image",
                "mask_blur", "pose", "source", "aspect", "quality", "hires", "hires_strength", "hires_upscaler",
                "tile", "scale", "frames", "fps", "motion", "extra", "canvas", "nsfw_channel", "count",
                "ip_images", "ip_weights", "ip_mode", "ip_scale", "style_ref", "train_images")


def encode_mask(mask: Image.Image) -> str:
    """The mask as the runner takes it: base64 of a mode-L PNG."""
    out = io.BytesIO()
    mask.convert("L").save(out, format="PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")


def inpaint_params(base: dict[str, Any], canvas: Canvas, *, spec: ModelSpec, strength: float,
                   source: dict[str, Any], prompt: str | None = None, seed: int | None = None,
                   embeddings: list[str] | None = None) -> dict[str, Any]:
    """An inpaint job's parameters: ``base`` (the source job's model, prompt, steps...), the canvas
    and mask, the working size of model ``spec`` for it, a new seed unless given.

    A new ``prompt`` (Vary (Region), the remix modal) replaces the source's along with what was made
    from the source's: its wildcard template (a Reroll would otherwise draw the source's prompt again)
    and its embeddings, which become ``embeddings`` (those the new prompt and negative use).
    Encodes images: run it off the event loop."""
    params = {k: v for k, v in base.items() if k not in _SOURCE_ONLY}
    width, height = spec.size_for_canvas(*canvas.size)
    params.update({
        "task": "inpaint", "count": 1, "width": width, "height": height, "strength": strength,
        "mask_blur": DEFAULT_MASK_BLUR, "seed": secrets.randbelow(SEED_LIMIT) if seed is None else seed,
        "init_image": encode_for_job(canvas.image), "mask_image": encode_mask(canvas.mask), "source": source,
        "canvas": {**canvas.edit, "width": canvas.size[0], "height": canvas.size[1]},
    })
    if prompt is not None:
        params.pop("prompt_template", None)
        params.pop("embeddings", None)
        params["prompt"] = prompt
        if embeddings:
            params["embeddings"] = list(embeddings)
    return params


# The result buttons' actions: Zoom Out by each factor, and a pan in each direction.
ZOOMS = {"zoom2": 2.0, "zoom15": 1.5}
OPS = (*ZOOMS, *DIRECTIONS)


def apply(op: str, png: bytes) -> Canvas:
    """The canvas for button ``op`` (one of OPS) on the image ``png``."""
    if op not in OPS:
        raise InvalidOption(f"Unknown canvas edit {op!r}.")
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    if op in ZOOMS:
        return zoom_out(image, ZOOMS[op])
    return pan(image, op)  # type: ignore[arg-type]


def describe(params: dict[str, Any]) -> str:
    """What a canvas job did, in words for the embed."""
    edit = params.get("canvas") or {}
    source = params.get("source") or {}
    what = (f"image {int(source.get('index', 0)) + 1} of job #{source['job_id']}" if "job_id" in source
            else "your image")
    size = f"{edit.get('width')}×{edit.get('height')}"
    op = edit.get("op")
    if op == "zoom":
        return f"Zoom Out {float(edit.get('factor', 2)):g}x of {what} ({size})"
    if op == "pan":
        return f"{what.capitalize()} extended {edit.get('direction')} ({size})"
    if op == "region":
        return f"Cells {describe_cells(list(edit.get('cells') or []))} of {what} redrawn"
    return f"{what.capitalize()} redrawn under your mask ({size})"
