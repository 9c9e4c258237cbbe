"""/describe on the worker: the tiny BLIP captioner and WD14-style tagger (inference/testing/vision.py)
loaded through transformers' and onnxruntime's real loading paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from inference.media import encode_job_image, read_parameters
from inference.models import ModelRegistry, RequestRefused
from inference.runners import caption
from inference.testing import vision
from inference.types import GenerationRequest

IMAGE = encode_job_image(Image.new("RGB", (80, 60), (200, 120, 40)))


def _request(**changes) -> GenerationRequest:  # type: ignore[no-untyped-def]
    values = {"job_id": 7, "model": "tiny-blip", "prompt": "Describe photo.png", "task": "describe",
              "init_image": IMAGE, "seed": 5, "steps": 1, "guidance": 0.0,
              "extra": {"tagger": "tiny-wd-tagger", "anime": "auto"}} | changes
    return GenerationRequest(**values)


def test_four_distinct_prompts_stored_in_the_png(engine) -> None:  # type: ignore[no-untyped-def]
    result = engine.run(_request(extra={"tagger": "tiny-wd-tagger", "anime": "off"}))
    prompts = read_parameters(result.images[0].png).split("\n")
    assert len(prompts) == 4 and len(set(prompts)) == 4 and all(p.strip() for p in prompts)
    assert result.parameters.split("\n") == prompts
    # The file is the described image itself (what the image check of every result screens).
    assert (result.images[0].width, result.images[0].height) == (80, 60)
    # Reproducible: the same seed gives the same prompts.
    assert engine.run(_request(extra={"tagger": "tiny-wd-tagger", "anime": "off"})).parameters == result.parameters


def test_an_anime_picture_gets_danbooru_tags(engine) -> None:  # type: ignore[no-untyped-def]
    tagged = engine.run(_request()).parameters.split("\n")
    # The tiny tagger sees an anime picture (its general tags score high, "realistic" low).
    assert len(tagged) == 4
    assert any(p.startswith("hatsune miku, ") and "1girl" in p for p in tagged)  # the tags alone
    assert any(", hatsune miku, " in p and not p.startswith("hatsune") for p in tagged)  # a caption + tags
    assert not any("realistic" in p for p in tagged)
    forced_off = engine.run(_request(extra={"tagger": "tiny-wd-tagger", "anime": "off"})).parameters
    assert "1girl" not in forced_off


def test_anime_detection_rules() -> None:
    many = [("1girl", 0.9), ("solo", 0.8), ("smile", 0.7), ("long_hair", 0.6)]
    assert caption.Tags(many, [], "general").looks_anime()
    assert not caption.Tags(many[:3], [], "general").looks_anime()
    assert not caption.Tags([*many, ("realistic", 0.5)], [], "general").looks_anime()
    assert caption.Tags([("(cosplay)", 0.9)], [("hatsune_miku", 0.9)], "general").prompt() == \
        r"hatsune miku, \(cosplay\)"


def test_a_photo_on_auto_gets_captions_only(tmp_path: Path, tiny_models: Path) -> None:
    from inference.engine import Engine

    vision.write_tagger(tmp_path / "photo-tagger", 1, bias=-3.0)  # sees no tag at all
    toml = tmp_path / "models.toml"
    toml.write_text(f'packaged = false\ndefault = "tiny-blip"\n[models.tiny-blip]\nkind = "caption"\n'
                    f'source = "{tiny_models.parent / "tiny-blip"}"\nmax_new_tokens = 8\n'
                    f'[models.photo-tagger]\nkind = "tagger"\nsource = "{tmp_path / "photo-tagger"}"\n',
                    encoding="utf-8")
    engine = Engine(ModelRegistry.load(toml), device="cpu")
    prompts = engine.run(_request(extra={"tagger": "photo-tagger", "anime": "auto"})).parameters.split("\n")
    assert len(prompts) == 4 and not any("," in p for p in prompts)


def test_describe_refuses_other_tasks_and_helpers_run_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestRefused, match="cannot run a txt2img job"):
        engine.run(_request(task="txt2img"))
    with pytest.raises(RequestRefused, match="needs an image"):
        engine.run(_request(init_image=None))
    with pytest.raises(RequestRefused, match="runs none itself"):
        engine.run(_request(model="tiny-wd-tagger"))


def test_tag_thresholds_general_and_character() -> None:
    import numpy as np

    class Session:
        def get_inputs(self):  # type: ignore[no-untyped-def]
            return [type("Input", (), {"name": "input", "shape": [None, 8, 8, 3]})()]

        def run(self, outputs, feeds):  # type: ignore[no-untyped-def]
            assert feeds["input"].shape == (1, 8, 8, 3)
            return [np.array([[0.1, 0.7, 0.9, 0.3, 0.5, 0.8, 0.9]], dtype=np.float32)]

    tagger = caption.Tagger(Session(), ["general", "sensitive", "1girl", "solo", "smile", "miku", "rin"],
                            [9, 9, 0, 0, 0, 4, 4], 8)
    reading = caption.tags(tagger, Image.new("RGB", (20, 10)))
    assert reading.rating == "sensitive"
    assert reading.general == [("1girl", pytest.approx(0.9)), ("smile", pytest.approx(0.5))]  # 0.3 < 0.35
    assert [name for name, _ in reading.characters] == ["rin"]  # 0.8 < 0.85
