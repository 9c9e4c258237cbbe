"""Telling an attached OpenPose skeleton from a photo, and naming presets the way members type them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.errors import InvalidOption
from bot.params.pose import check_strength, is_skeleton, preset_name
from bot.params.pose_presets import PRESETS, render


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=70)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_rendered_skeletons_are_skeletons_even_as_jpeg(name: str) -> None:
    skeleton = render(name, 512, 768).image
    assert is_skeleton(skeleton) and is_skeleton(_jpeg(skeleton))


def test_photos_are_not_skeletons() -> None:
    rng = np.random.default_rng(1)
    assert not is_skeleton(Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8)))
    # A night photo: mostly black, but its lights are grey-white, not OpenPose colours.
    night = np.zeros((300, 200, 3), dtype=np.uint8)
    night[100:140, 50:90] = (230, 225, 210)
    assert not is_skeleton(Image.fromarray(night))
    assert not is_skeleton(Image.new("RGB", (64, 64)))  # all black: no pose in it


def test_preset_names_as_typed_and_strength_range() -> None:
    assert preset_name("  Lying_Down ") == "lying down" and preset_name("T Pose") == "t-pose"
    assert preset_name(None) == "standing"
    with pytest.raises(InvalidOption, match="Unknown pose 'cartwheel'"):
        preset_name("cartwheel")
    assert check_strength(None) == 1.0 and check_strength(0) == 0.0 and check_strength(2) == 2.0
    for bad in (-0.5, 2.01, float("nan")):
        with pytest.raises(InvalidOption, match="Strength must be 0-2"):
            check_strength(bad)
