"""Every limit a request must stay within, defined once.

The bot checks these before a job exists, so a member hears at once; the engine and its runners
check them again when a worker runs the job, because a job may come from elsewhere (the CLI, a
remote bot of another version). Both sides read the numbers here. Like inference/models.py this
module stays free of torch: the bot imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inference.models import ModelSpec

# Seeds are 32-bit: every pipeline's generator takes them, and A1111 writes them so.
SEED_LIMIT = 2**32

# Classifier-free guidance: beyond this every model only burns the image.
MAX_GUIDANCE = 30.0

# Sizes the pipelines take: multiples of the VAE's x8 factor, and not below the smallest latent the
# UNets were built for.
SIZE_MULTIPLE = 8
MIN_SIDE = 64
# Sizes the bot picks are on the latent grid the UNets were trained on.
SIZE_GRID = 64

# Image-to-image strength: the share of the denoising schedule redrawn (1 ignores the input image).
MIN_STRENGTH, MAX_STRENGTH = 0.05, 1.0

# Hires fix (/imagine hires): the upscale factors offered and the second pass's default strength.
HIRES_FACTORS = (1.5, 2.0)
DEFAULT_HIRES_STRENGTH = 0.4
# Canvas edits: Zoom Out factors, the share a pan grows the canvas by, the soft seam's blur (px)
# when the source is pasted back outside the mask, and the largest canvas side an edit may reach.
ZOOM_FACTORS = (2.0, 1.5)
PAN_GROWTH = 0.5
DEFAULT_MASK_BLUR = 8
MAX_CANVAS_SIDE = 4096
# The widest soft seam a canvas edit may ask for (px at the canvas's size).
MAX_MASK_BLUR = 64

# ControlNet conditioning scale (/pose strength, "Weight" in A1111): 0 ignores the skeleton, 2
# follows it rigidly.
MIN_CONTROL_SCALE, MAX_CONTROL_SCALE = 0.0, 2.0

# LoRA weights a job may ask for.
MIN_LORA_WEIGHT, MAX_LORA_WEIGHT = 0.0, 2.0

# LoRA slots of compiled UNets (inference/hotswap.py; ATELIER_LORA_RANK, ATELIER_LORA_SLOTS): the
# largest LoRA rank a slot takes, and the slots per UNet (0: none; LoRAs then load as their own
# adapters and the compiled blocks recompile). A job names at most three LoRAs, so more slots only
# cost memory; rank 256 slots on SDXL take about 1.4 GB each in fp16.
DEFAULT_LORA_RANK, MIN_LORA_RANK, MAX_LORA_RANK = 64, 1, 256
DEFAULT_LORA_SLOTS, MAX_LORA_SLOTS = 3, 8

# Real-ESRGAN upscaling: the factors offered, and the input pixels each takes, so that the result
# stays within what one upload and one device's memory hold. A registry entry's ``max_input``
# overrides the cap on the worker.
UPSCALE_FACTORS = (2, 4)
UPSCALE_MAX_INPUT = {2: 2048 * 2048, 4: 1024 * 1024}
# The Stable Diffusion x4 upscaler redraws x4 only, with a UNet at the input's size: small inputs
# only, unless its registry entry's ``max_input`` says otherwise.
SD_X4_SCALE = 4
SD_X4_MAX_INPUT = 256 * 256

# /animate (Stable Video Diffusion).
MIN_FRAMES = 2
# SVD's trained frame count, for registry entries that do not name theirs.
DEFAULT_FRAMES = 14
DEFAULT_FPS = 7
DEFAULT_MOTION = 127
FPS_RANGE = (3, 30)
MOTION_RANGE = (1, 255)
# What the /animate slash options let through: wider than the ranges above on purpose, so a member
# who types 40 fps reads the bot's explanation of the range instead of the client's bare refusal.
FPS_OPTION_RANGE = (1, 60)
MOTION_OPTION_RANGE = (0, 1000)


# Styles a server adds (/admin styles): name length, template and negative length, and how many.
MAX_STYLE_NAME = 32
MAX_STYLE_TEMPLATE = 500
MAX_STYLE_NEGATIVE = 500
MAX_SERVER_STYLES = 50
# A textual-inversion embedding is a few KB; bigger files are refused before they are read.
MAX_EMBEDDING_BYTES = 16 * 2**20


def frame_limits(spec: ModelSpec) -> tuple[int, int]:
    """(default frames, most frames) of a video model: its trained count unless the registry says more."""
    frames = int(spec.extra.get("frames", DEFAULT_FRAMES))
    return frames, int(spec.extra.get("max_frames", frames))


def sd_x4_max_input(spec: ModelSpec) -> int:
    """The most input pixels an ``sd-x4`` upscaler takes."""
    return int(spec.extra.get("max_input", SD_X4_MAX_INPUT))

# /describe: prompts per image; the WD tagger's score thresholds for a general and a character tag
# (SmilingWolf's defaults), and how many confident general tags (with no photo cue) make a picture anime.
DESCRIBE_PROMPTS = 4
TAG_THRESHOLD = 0.35
CHARACTER_THRESHOLD = 0.85
ANIME_MIN_TAGS = 4

# /blend (IP-Adapter image prompts): images per blend, each image's weight, and the adapter scale
# (1 lets the images lead; the prompt, if any, still steers). /imagine style_ref: the style weight.
BLEND_IMAGES = (2, 5)
IP_WEIGHT_RANGE = (0.0, 5.0)
BLEND_SCALE = 1.0
STYLE_WEIGHT_RANGE = (0.0, 2.0)
DEFAULT_STYLE_WEIGHT = 1.0

# /train (a member's own LoRA): how many usable images a training set takes, and the ranges a member
# may set the LoRA's rank, training steps and learning rate within (the defaults per kind and model
# family live in inference/training/settings.py and sit inside these ranges).
MIN_TRAIN_IMAGES, MAX_TRAIN_IMAGES = 5, 30
TRAIN_RANK_RANGE = (4, 64)
TRAIN_STEPS_RANGE = (100, 3000)
TRAIN_LR_RANGE = (1e-5, 1e-3)
# A training image's longest side after it is read, and the fewest pixels a usable one has.
MAX_TRAIN_IMAGE_SIDE = 4096
MIN_TRAIN_IMAGE_SIDE = 256
