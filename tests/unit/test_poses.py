"""Pose presets: every joint lands where the preset puts it, in OpenPose's colour, at every aspect."""

from __future__ import annotations

import pytest

from bot.params.pose_presets import COLORS, KEYPOINTS, LIMB_SHADE, LIMBS, PRESETS, place, render

REQUIRED = {"standing", "walking", "running", "sitting", "kneeling", "lying down", "t-pose", "arms crossed",
            "waving", "jumping", "dancing", "fighting stance"}


def test_at_least_the_twelve_presets_with_all_18_keypoints() -> None:
    assert REQUIRED <= set(PRESETS)
    for name, preset in PRESETS.items():
        assert set(preset) == set(KEYPOINTS), name


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("size", [(512, 512), (768, 512), (448, 640), (256, 1024)])
def test_joints_are_drawn_where_the_preset_puts_them(name: str, size: tuple[int, int]) -> None:
    width, height = size
    skeleton = render(name, width, height)
    assert skeleton.image.size == size
    assert skeleton.joints == place(PRESETS[name], width, height)
    for index, (x, y) in skeleton.joints.items():
        assert 0 <= x < width and 0 <= y < height
        # Dots are drawn last, in order: a later dot may cover an earlier one it touches (eyes, ears).
        covering = [j for j, (jx, jy) in skeleton.joints.items() if j > index and abs(jx - x) + abs(jy - y) <= 8]
        if not covering:
            assert skeleton.image.getpixel((x, y)) == COLORS[index], (name, KEYPOINTS[index])


def test_limbs_use_the_shaded_openpose_colours() -> None:
    skeleton = render("t-pose", 512, 512)
    (ax, ay), (bx, by) = skeleton.joints[3], skeleton.joints[4]  # right elbow -> right wrist: limb 3
    limb = LIMBS.index((3, 4))
    middle = ((ax + bx) // 2, (ay + by) // 2)
    assert skeleton.image.getpixel(middle) == tuple(int(c * LIMB_SHADE) for c in COLORS[limb])
    assert skeleton.image.getpixel((2, 2)) == (0, 0, 0)


def test_the_figure_fills_the_aspect_it_is_fitted_to() -> None:
    wide = place(PRESETS["lying down"], 1024, 512)
    xs = [x for x, _ in wide.values()]
    assert max(xs) - min(xs) > 0.8 * 1024
    tall = place(PRESETS["standing"], 512, 1024)
    ys = [y for _, y in tall.values()]
    assert max(ys) - min(ys) > 0.8 * 1024
