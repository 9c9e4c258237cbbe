"""The result embed of a /pose job says where its pose came from (preset or attachment) and how strongly."""

from __future__ import annotations

from typing import Any

import pytest

from bot.params.images import describe_source
from bot.ui.render import result_embed
from db.models import Job


def _pose_job(pose: dict[str, Any], **params: Any) -> Job:
    return Job(id=42, command="pose", user_id=1, model="tiny-sd15-openpose", prompt="a knight", seed=21,
               params={"task": "pose", "pose": pose, "width": 448, "height": 640, "steps": 4, "guidance": 7.0,
                       **params})


@pytest.mark.parametrize(("pose", "params", "expected"), [
    ({"preset": "waving"}, {"control_scale": 1.2}, "Pose from preset “waving” at strength 1.2"),
    ({"attachment": "me.png", "kind": "skeleton"}, {"control_scale": 1.0}, "Pose from your skeleton at strength 1"),
    ({"attachment": "me.jpg", "kind": "photo"}, {"control_scale": 0.5}, "Pose from your photo at strength 0.5"),
    ({}, {}, "Pose from your image at strength 1"),
])
def test_pose_source_in_words(pose: dict[str, Any], params: dict[str, Any], expected: str) -> None:
    assert describe_source({"task": "pose", "pose": pose, **params}) == expected


def test_the_pose_result_embed_shows_it() -> None:
    embed = result_embed(_pose_job({"preset": "waving"}, control_scale=1.2), "result.png").to_dict()
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Image"] == "Pose from preset “waving” at strength 1.2"


def test_text_to_image_has_no_source() -> None:
    assert describe_source({"task": "txt2img"}) is None
