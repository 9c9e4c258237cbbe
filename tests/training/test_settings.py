"""Training settings: defaults by kind and family, member values only within their ranges."""

from __future__ import annotations

import pytest

from inference.limits import TRAIN_LR_RANGE, TRAIN_RANK_RANGE, TRAIN_STEPS_RANGE
from inference.training.settings import DEFAULTS, TrainingRefused, settings_for


def test_defaults_by_kind_and_family_sit_inside_the_ranges() -> None:
    for (kind, family), defaults in DEFAULTS.items():
        settings = settings_for(kind, family, trigger="zxq", base_model="m")
        assert (settings.rank, settings.steps, settings.learning_rate) == (defaults.rank, defaults.steps,
                                                                          defaults.learning_rate)
        assert TRAIN_RANK_RANGE[0] <= settings.rank <= TRAIN_RANK_RANGE[1]
        assert TRAIN_STEPS_RANGE[0] <= settings.steps <= TRAIN_STEPS_RANGE[1]
        assert TRAIN_LR_RANGE[0] <= settings.learning_rate <= TRAIN_LR_RANGE[1]
    assert settings_for("style", "sd1", trigger="zxq", base_model="m").rank > settings_for(
        "subject", "sd1", trigger="zxq", base_model="m").rank
    assert settings_for("subject", "sdxl", trigger="zxq", base_model="m").resolution == 1024


@pytest.mark.parametrize(("changes", "words"), [
    ({"rank": 512}, "rank must be 4-64"), ({"steps": 100000}, "steps must be 100-3000"),
    ({"learning_rate": 0.5}, "learning rate must be"), ({"kind": "face"}, "Kind must be"),
    ({"family": "sd3"}, "SD 1.5 and SDXL"), ({"trigger": "two words"}, "one word"), ({"trigger": "x"}, "one word"),
])
def test_absurd_values_are_refused_not_clamped(changes: dict, words: str) -> None:
    args = {"kind": "subject", "family": "sd1", "trigger": "zxq_rosie"} | changes
    kind, family = args.pop("kind"), args.pop("family")
    with pytest.raises(TrainingRefused, match=words):
        settings_for(kind, family, base_model="m", **args)


def test_member_values_inside_the_ranges_are_kept() -> None:
    settings = settings_for("subject", "sd1", trigger=" zxq_rosie ", base_model="m", rank=8, steps=400,
                            learning_rate=2e-4)
    assert (settings.trigger, settings.rank, settings.steps, settings.learning_rate) == ("zxq_rosie", 8, 400, 2e-4)
    assert settings.checkpoint_every <= settings.steps and settings.sample_every == 100
