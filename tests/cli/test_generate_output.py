"""`atelier generate -o`: the folder, the format and several images, each handled before or after the job."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from bot.__main__ import main


@pytest.fixture(autouse=True)
def _tiny(tiny_models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_MODELS", str(tiny_models))
    monkeypatch.setenv("ATELIER_DEVICES", "cpu")
    monkeypatch.setenv("ATELIER_MODERATION_SEMANTIC", "false")
    monkeypatch.setenv("ATELIER_NSFW_IMAGE_CHECK", "false")


def test_a_missing_folder_fails_at_once_with_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["generate", "a cat", "-o", str(tmp_path / "nope" / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: -o {tmp_path / 'nope' / 'x.png'}: the folder {tmp_path / 'nope'} does not exist"]


def test_an_unknown_format_is_refused(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["generate", "a cat", "-o", str(tmp_path / "x.gif")]) == 2
    assert "must end in .png, .jpg, .jpeg or .webp" in capsys.readouterr().err


def test_jpg_is_a_jpeg_and_count_writes_the_grid_and_each_image(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "x.jpg"
    assert main(["generate", "a cat", "--seed", "1", "--steps", "2", "--count", "2", "-q", "-o", str(out)]) == 0
    singles = [tmp_path / "x-1.jpg", tmp_path / "x-2.jpg"]
    for path in (out, *singles):
        with Image.open(path) as image:
            assert image.format == "JPEG"
    with Image.open(out) as grid, Image.open(singles[0]) as single:
        assert grid.size != single.size  # the grid at -o, each image beside it
    assert capsys.readouterr().out.strip() == f"wrote {out}, {singles[0]}, {singles[1]}"


def test_a_write_that_fails_ends_the_command_with_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys) -> None:  # type: ignore[no-untyped-def]
    def refuse(self: Path, data: bytes) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", refuse)
    assert main(["generate", "a cat", "--steps", "2", "-q", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert f"could not write {tmp_path / 'x.png'}: Permission denied" in err
