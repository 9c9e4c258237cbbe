"""/train's training set from what a member attached: images one by one, or one zip of them.

Every image goes through the attachment checks (bot/params/attachments.py: a readable format, not
truncated, not a decompression bomb, at most MAX_PIXELS), must be at least MIN_TRAIN_IMAGE_SIDE on
its short side, and is re-encoded as PNG (its EXIF, GPS included, stays behind); exact duplicates
(same pixels) count once. A zip is read with limits on its entries and their unpacked sizes, so a zip
bomb is refused before it is unpacked. Pure functions, no discord, no database; blocking (CPU).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass

from bot.errors import InvalidOption
from bot.params.attachments import decode
from inference.limits import MAX_TRAIN_IMAGES, MIN_TRAIN_IMAGE_SIDE, MIN_TRAIN_IMAGES

# A zip's entries and their total unpacked bytes: 30 images of up to ~20 MB each, and no more.
MAX_ZIP_ENTRIES = 200
MAX_ZIP_UNPACKED = 600 * 2**20
MAX_ZIP_ENTRY = 40 * 2**20
# The largest zip download (one attachment).
MAX_ZIP_BYTES = 200 * 2**20
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")


@dataclass(frozen=True, slots=True)
class TrainingSet:
    pngs: list[bytes]
    skipped: list[str]  # why some files were left out (duplicates), for the member


def is_zip(filename: str, data: bytes) -> bool:
    return filename.lower().endswith(".zip") or data[:4] == b"PK\x03\x04"


def unzip(data: bytes, *, filename: str = "images.zip") -> list[tuple[str, bytes]]:
    """The image files of a zip (folders, hidden files and other files left out), within the limits."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InvalidOption(f"`{filename}` is not a readable zip file.") from None
    with archive:
        entries = [e for e in archive.infolist() if not e.is_dir()]
        if len(entries) > MAX_ZIP_ENTRIES:
            raise InvalidOption(f"`{filename}` holds {len(entries)} files; a training zip holds at most "
                                f"{MAX_TRAIN_IMAGES} images.")
        images = [e for e in entries if e.filename.lower().endswith(_IMAGE_SUFFIXES)
                  and not e.filename.rsplit("/", 1)[-1].startswith(".") and "__MACOSX" not in e.filename]
        if sum(e.file_size for e in images) > MAX_ZIP_UNPACKED or any(e.file_size > MAX_ZIP_ENTRY for e in images):
            raise InvalidOption(f"`{filename}` unpacks to more than a training set needs; zip at most "
                                f"{MAX_TRAIN_IMAGES} images of under {MAX_ZIP_ENTRY // 2**20} MB each.")
        out = []
        for entry in images:
            with archive.open(entry) as handle:
                content = handle.read(MAX_ZIP_ENTRY + 1)  # the header's size may lie: never read past the cap
            if len(content) > MAX_ZIP_ENTRY:
                raise InvalidOption(f"`{entry.filename}` in `{filename}` is larger than {MAX_ZIP_ENTRY // 2**20} MB.")
            out.append((f"{filename}/{entry.filename}", content))
    return out


def training_set(files: list[tuple[str, bytes]]) -> TrainingSet:
    """Check and prepare the images: InvalidOption naming the first file that fails and why."""
    expanded: list[tuple[str, bytes]] = []
    for name, data in files:
        expanded += unzip(data, filename=name) if is_zip(name, data) else [(name, data)]
    if len(expanded) > MAX_TRAIN_IMAGES:
        raise InvalidOption(f"You sent {len(expanded)} images; a training set has {MIN_TRAIN_IMAGES}-"
                            f"{MAX_TRAIN_IMAGES}.")
    pngs: list[bytes] = []
    seen: dict[str, str] = {}
    skipped: list[str] = []
    for name, data in expanded:
        image = decode(data, filename=name).image
        if min(image.size) < MIN_TRAIN_IMAGE_SIDE:
            raise InvalidOption(f"`{name}` is {image.width}×{image.height}; training images need at least "
                                f"{MIN_TRAIN_IMAGE_SIDE} px on each side.")
        digest = hashlib.sha256(image.tobytes()).hexdigest()
        if digest in seen:
            skipped.append(f"`{name}` is the same image as `{seen[digest]}`")
            continue
        seen[digest] = name
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    if len(pngs) < MIN_TRAIN_IMAGES:
        extra = f" ({'; '.join(skipped)})" if skipped else ""
        raise InvalidOption(f"{len(pngs)} usable image(s){extra}; a LoRA needs at least {MIN_TRAIN_IMAGES} "
                            "different images.")
    return TrainingSet(pngs, skipped)
