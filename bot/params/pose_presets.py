"""Pose presets for /pose: 18 COCO keypoints drawn as an OpenPose skeleton, fitted to the image's shape.

ControlNet OpenPose models were trained on skeletons drawn by the OpenPose annotator
(controlnet_aux's ``draw_bodypose``): black background, 17 limbs as filled sticks at 60 % of their
colour, then each joint as a dot in its full colour, in the order and colours below. Drawing the
same way is what makes a preset read as a pose to the model. Pure Pillow, no torch.

Coordinates are in a figure box about 100 units tall (x right, y down); the person's right side is
on the image's left, as in a front view. ``render`` scales the figure's bounding box into the canvas
with a margin, keeping its proportions, so the same preset works at every aspect.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image, ImageDraw

KEYPOINTS = ("nose", "neck", "right shoulder", "right elbow", "right wrist", "left shoulder", "left elbow",
             "left wrist", "right hip", "right knee", "right ankle", "left hip", "left knee", "left ankle",
             "right eye", "left eye", "right ear", "left ear")
# OpenPose's limb sequence (0-based keypoint pairs) and its 18 colours (RGB), as the annotator draws them.
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
COLORS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
          (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
          (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
LIMB_SHADE = 0.6
_MARGIN = 0.08

Point = tuple[float, float]

_STANDING: dict[str, Point] = {
    "nose": (50, 10), "neck": (50, 20), "right shoulder": (40, 20), "right elbow": (37, 35),
    "right wrist": (35, 48), "left shoulder": (60, 20), "left elbow": (63, 35), "left wrist": (65, 48),
    "right hip": (44, 50), "right knee": (44, 70), "right ankle": (44, 90), "left hip": (56, 50),
    "left knee": (56, 70), "left ankle": (56, 90), "right eye": (48, 8), "left eye": (52, 8),
    "right ear": (46, 9), "left ear": (54, 9),
}


def _pose(**changes: Point) -> dict[str, Point]:
    return _STANDING | {name.replace("_", " "): point for name, point in changes.items()}


PRESETS: dict[str, dict[str, Point]] = {
    "standing": _pose(),
    "walking": _pose(right_elbow=(39, 35), right_wrist=(42, 47), left_elbow=(62, 35), left_wrist=(60, 47),
                     right_knee=(42, 70), right_ankle=(38, 89), left_knee=(58, 69), left_ankle=(62, 90)),
    "running": _pose(right_elbow=(33, 30), right_wrist=(38, 21), left_elbow=(67, 33), left_wrist=(71, 42),
                     right_knee=(38, 64), right_ankle=(30, 76), left_knee=(58, 70), left_ankle=(61, 90)),
    "sitting": _pose(right_elbow=(37, 40), right_wrist=(40, 56), left_elbow=(63, 40), left_wrist=(60, 56),
                     right_hip=(44, 52), left_hip=(56, 52), right_knee=(40, 60), left_knee=(60, 60),
                     right_ankle=(40, 84), left_ankle=(60, 84)),
    "kneeling": _pose(right_elbow=(38, 36), right_wrist=(41, 50), left_elbow=(62, 36), left_wrist=(59, 50),
                      right_knee=(43, 74), left_knee=(57, 74), right_ankle=(41, 86), left_ankle=(59, 86)),
    "lying down": {
        "nose": (10, 50), "neck": (20, 50), "right shoulder": (20, 44), "right elbow": (35, 43),
        "right wrist": (48, 43), "left shoulder": (20, 56), "left elbow": (35, 57), "left wrist": (48, 57),
        "right hip": (50, 46), "right knee": (70, 46), "right ankle": (90, 46), "left hip": (50, 54),
        "left knee": (70, 54), "left ankle": (90, 54), "right eye": (8, 48), "left eye": (8, 52),
        "right ear": (10, 45), "left ear": (10, 55),
    },
    "t-pose": _pose(right_elbow=(28, 20), right_wrist=(16, 20), left_elbow=(72, 20), left_wrist=(84, 20)),
    "arms crossed": _pose(right_elbow=(41, 36), right_wrist=(58, 31), left_elbow=(59, 36), left_wrist=(42, 31)),
    "waving": _pose(left_elbow=(68, 15), left_wrist=(72, 4)),
    "jumping": _pose(right_elbow=(34, 10), right_wrist=(28, 0), left_elbow=(66, 10), left_wrist=(72, 0),
                     right_knee=(40, 68), right_ankle=(44, 82), left_knee=(60, 68), left_ankle=(56, 82)),
    "dancing": _pose(right_elbow=(30, 14), right_wrist=(26, 3), left_elbow=(70, 27), left_wrist=(80, 33),
                     left_knee=(64, 66), left_ankle=(74, 78)),
    "fighting stance": _pose(right_elbow=(40, 32), right_wrist=(44, 20), left_elbow=(62, 30), left_wrist=(58, 18),
                             right_knee=(38, 70), right_ankle=(32, 90), left_knee=(62, 70), left_ankle=(68, 90)),
}


@dataclass(frozen=True, slots=True)
class Skeleton:
    image: Image.Image
    # Keypoint index -> pixel position where its dot was drawn.
    joints: dict[int, tuple[int, int]]


def sizes(width: int, height: int) -> tuple[int, int]:
    """(stick width, joint radius): the annotator's 4 px at 512 px, scaled with the canvas."""
    unit = max(2, round(min(width, height) / 128))
    return unit, unit


def place(preset: dict[str, Point], width: int, height: int) -> dict[int, tuple[int, int]]:
    """Keypoint index -> pixel, the figure's bounding box fitted inside the canvas with a margin."""
    xs = [p[0] for p in preset.values()]
    ys = [p[1] for p in preset.values()]
    box_w, box_h = max(max(xs) - min(xs), 1.0), max(max(ys) - min(ys), 1.0)
    scale = min(width * (1 - 2 * _MARGIN) / box_w, height * (1 - 2 * _MARGIN) / box_h)
    left = (width - box_w * scale) / 2 - min(xs) * scale
    top = (height - box_h * scale) / 2 - min(ys) * scale
    return {KEYPOINTS.index(name): (round(left + x * scale), round(top + y * scale)) for name, (x, y) in preset.items()}


def render(name: str, width: int, height: int) -> Skeleton:
    """The preset's OpenPose skeleton on a black ``width`` x ``height`` canvas."""
    if name not in PRESETS:
        raise KeyError(name)
    joints = place(PRESETS[name], width, height)
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    stick, radius = sizes(width, height)
    for index, (a, b) in enumerate(LIMBS):
        if a in joints and b in joints:
            shade = tuple(int(c * LIMB_SHADE) for c in COLORS[index])
            draw.line([joints[a], joints[b]], fill=shade, width=stick * 2)
    for index, (x, y) in sorted(joints.items()):
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=COLORS[index])
    return Skeleton(image=image, joints=joints)


def preset_names() -> list[str]:
    return list(PRESETS)
