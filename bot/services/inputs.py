"""A job's input images on their way in and out of storage (db.models.JobInput).

Commands put a new input in a job's parameters as base64 text (bot/params/attachments.py); the job
service stores the bytes in their own table and keeps only their ids in the parameters, so the
scheduler's many reads of job rows never carry images. A claimed job's request gets them back as
base64, the form a runner (and a remote worker, over JSON) takes.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from bot.errors import InvalidOption
from inference.types import GenerationRequest

# GenerationRequest fields that carry an image (base64 in the request, bytes in db.models.JobInput).
INPUT_FIELDS = ("init_image", "control_image", "mask_image", "train_images")
# Fields that carry a list of images (IP-Adapter references): stored as "<field>.<index>".
LIST_FIELDS = ("ip_images",)


async def split_inputs(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes], dict[str, int]]:
    """(params without input images, new images to store, stored inputs of another job to copy).

    Commands put a new input in params as base64 (bot/params/attachments.py); a rerun's params name its
    parent's stored inputs by id (``params["inputs"]``). A new image replaces a named one."""
    inline = {name: params[name] for name in INPUT_FIELDS if isinstance(params.get(name), str)}
    listed = [name for name in LIST_FIELDS if isinstance(params.get(name), list) and params[name]]
    for name in listed:
        inline |= {f"{name}.{i}": text for i, text in enumerate(params[name]) if isinstance(text, str)}
    rest = {k: v for k, v in params.items() if k not in INPUT_FIELDS and k not in LIST_FIELDS and k != "inputs"}
    refs = {k: int(v) for k, v in (params.get("inputs") or {}).items()
            if k not in inline and k.partition(".")[0] not in listed}
    if not inline:
        return rest, {}, refs
    try:
        data = await asyncio.to_thread(lambda: {k: base64.b64decode(v, validate=True) for k, v in inline.items()})
    except ValueError:
        raise InvalidOption("The input image is damaged; attach it again.") from None
    return rest, data, refs


def fill_inputs(request: GenerationRequest, stored: dict[str, bytes]) -> None:
    """Put a job's stored input images into its request (base64: the request must survive JSON for
    remote workers). Blocking: runs off the loop."""
    for name in INPUT_FIELDS:
        if name in stored:
            setattr(request, name, base64.b64encode(stored[name]).decode("ascii"))
    for name in LIST_FIELDS:
        found = sorted((int(key.partition(".")[2]), data) for key, data in stored.items()
                       if key.partition(".")[0] == name)
        if found:
            setattr(request, name, [base64.b64encode(data).decode("ascii") for _, data in found])

