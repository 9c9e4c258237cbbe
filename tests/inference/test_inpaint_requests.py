"""Canvas-edit, hires and tile requests cross to remote workers intact and never share a batch."""

from __future__ import annotations

import json

import pytest

from inference.types import GenerationRequest


@pytest.mark.parametrize("changes", [
    {"task": "inpaint", "init_image": "aW1n", "mask_image": "bWFzaw==", "mask_blur": 12, "strength": 1.0},
    {"hires": 1.5, "hires_strength": 0.35, "hires_upscaler": "latent"},
    {"tile": True},
])
def test_survives_the_json_round_trip_and_is_never_batched(changes: dict) -> None:
    request = GenerationRequest(job_id=2, model="sd15", prompt="p", **changes)
    back = GenerationRequest.from_dict(json.loads(json.dumps(request.to_dict())))
    assert back == request
    assert request.batch_key() is None
    assert GenerationRequest(job_id=2, model="sd15", prompt="p").batch_key() is not None
