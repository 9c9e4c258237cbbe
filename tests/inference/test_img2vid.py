"""Stable Video Diffusion on the tiny model: frame count, fps, MP4/GIF encoding, fitting, limits."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from inference import video
from inference.media import encode_job_image
from inference.models import RequestRefused
from inference.types import GenerationRequest


def _request(**overrides) -> GenerationRequest:  # type: ignore[no-untyped-def]
    values = dict(job_id=1, model="tiny-svd", prompt="Animation", task="img2vid", width=128, height=64, steps=2,
                  guidance=3.0, seed=3, frames=5, fps=9, motion=100,
                  init_image=encode_job_image(Image.new("RGB", (100, 50), (200, 40, 40))))
    return GenerationRequest(**(values | overrides))


def test_svd_makes_an_mp4_with_the_requested_frames_and_fps(engine) -> None:  # type: ignore[no-untyped-def]
    steps: list[tuple[int, int]] = []
    result = engine.run(_request(), on_step=lambda s, t: steps.append((s, t)))
    (clip,) = result.images
    assert clip.mime == video.MP4 and video.sniff_mime(clip.png) == video.MP4
    frames, fps = video.decode_frames(clip.png)
    assert len(frames) == 5 and fps == pytest.approx(9) and frames[0].size == (128, 64)
    assert steps[-1] == (2, 2)
    assert "Frames: 5, FPS: 9, Motion bucket: 100" in result.parameters


def test_same_seed_same_frames(engine) -> None:  # type: ignore[no-untyped-def]
    a = engine.run(_request(frames=3)).images[0].png
    b = engine.run(_request(frames=3)).images[0].png
    assert [f.tobytes() for f in video.decode_frames(a)[0]] == [f.tobytes() for f in video.decode_frames(b)[0]]


def test_gif_fallback_without_ffmpeg(engine, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(video, "ffmpeg_exe", lambda: None)
    (clip,) = engine.run(_request(frames=4, fps=10)).images
    assert clip.mime == video.GIF
    with Image.open(io.BytesIO(clip.png)) as gif:
        assert gif.n_frames == 4 and gif.info["duration"] == 100


@pytest.mark.parametrize(("option", "message"), [({"frames": 9}, "Frames must be 2-8"), ({"fps": 31}, "FPS must be 3-30"),
                                                 ({"motion": 0}, "Motion must be 1-255"), ({"fps": 2}, "FPS")])
def test_out_of_range_options_are_refused(engine, option, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestRefused, match=message):
        engine.run(_request(**option))


def _noise_frames(count: int, size: tuple[int, int]) -> list[Image.Image]:
    import numpy as np

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(count)]


def test_fit_video_lowers_bitrate_then_size_under_the_limit() -> None:
    data, mime = video.encode_video(_noise_frames(14, (256, 256)), 7)
    assert mime == video.MP4
    limit = len(data) // 4
    fitted, ext = video.fit_video(data, limit)
    assert ext == "mp4" and len(fitted) <= limit
    frames, fps = video.decode_frames(fitted)
    assert len(frames) == 14 and fps == pytest.approx(7)


def test_fit_gif_shrinks_and_keeps_every_frame(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(video, "ffmpeg_exe", lambda: None)
    data, mime = video.encode_video(_noise_frames(6, (256, 256)), 8)
    assert mime == video.GIF
    fitted, ext = video.fit_video(data, len(data) // 3)
    assert ext == "gif" and len(fitted) <= len(data) // 3
    assert len(video.decode_frames(fitted)[0]) == 6


def test_fit_video_gives_up_below_64_px() -> None:
    data, _ = video.encode_video(_noise_frames(4, (128, 128)), 7)
    with pytest.raises(video.VideoTooLarge):
        video.fit_video(data, 200)
