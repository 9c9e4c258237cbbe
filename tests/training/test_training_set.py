"""/train's images: attachment checks, duplicates, sizes, counts and zips (including bombs)."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from bot.errors import InvalidOption
from bot.params import training
from tests.training.test_trainer import training_images


def _zip(files: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _named(images: list[bytes]) -> list[tuple[str, bytes]]:
    return [(f"image{i}.png", data) for i, data in enumerate(images)]


def test_five_images_make_a_set_of_pngs_without_their_metadata() -> None:
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif[0x8825] = {2: (1.0, 2.0, 3.0)}  # GPSInfo
    Image.new("RGB", (300, 300), (1, 2, 3)).save(jpeg, format="JPEG", exif=exif)
    result = training.training_set([*_named(training_images(4)), ("phone.jpg", jpeg.getvalue())])
    assert len(result.pngs) == 5 and result.skipped == []
    with Image.open(io.BytesIO(result.pngs[-1])) as image:
        assert image.format == "PNG" and not image.getexif()


def test_duplicates_count_once_and_too_few_usable_images_are_refused() -> None:
    images = training_images(4)
    with pytest.raises(InvalidOption, match=r"4 usable image\(s\) \(`image4.png` is the same image as `image0.png`\)"):
        training.training_set(_named([*images, images[0]]))


@pytest.mark.parametrize(("files", "words"), [
    ([("notes.txt", b"hello")], "not an image"),
    ([("cut.png", training_images(1)[0][:200])], "truncated|damaged"),
    ([("tiny.png", None)], "at least 256 px"),
])
def test_each_bad_file_is_named_with_its_reason(files: list, words: str) -> None:
    if files[0][1] is None:
        small = io.BytesIO()
        Image.new("RGB", (100, 400)).save(small, format="PNG")
        files = [(files[0][0], small.getvalue())]
    with pytest.raises(InvalidOption, match=words):
        training.training_set(_named(training_images(5)) + files)


def test_too_many_images_are_refused() -> None:
    with pytest.raises(InvalidOption, match="You sent 31 images; a training set has 5-30"):
        training.training_set(_named(training_images(1) * 31))


def test_a_zip_of_images_is_a_training_set_and_its_other_files_are_ignored() -> None:
    files = {f"set/{i}.png": data for i, data in enumerate(training_images(5))}
    files |= {"set/readme.txt": b"x", "__MACOSX/set/._0.png": b"junk", "set/.hidden.png": b"junk"}
    assert len(training.training_set([("rosie.zip", _zip(files))]).pngs) == 5


def test_zip_bombs_and_broken_zips_are_refused_before_unpacking() -> None:
    bomb = _zip({f"{i}.png": bytes(50 * 2**20) for i in range(1)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 2**20
    with pytest.raises(InvalidOption, match=r"larger than|unpacks to more"):
        training.training_set([("bomb.zip", bomb)])
    with pytest.raises(InvalidOption, match="holds 201 files"):
        training.training_set([("many.zip", _zip({f"{i}.txt": b"" for i in range(201)}))])
    with pytest.raises(InvalidOption, match="not a readable zip"):
        training.training_set([("broken.zip", b"PK\x03\x04 not really")])
