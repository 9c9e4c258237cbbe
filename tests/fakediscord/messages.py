"""Request bodies that create or edit messages: JSON or multipart (``payload_json`` + ``files[n]``).

https://discord.com/developers/docs/reference#uploading-files and
https://discord.com/developers/docs/resources/message#create-message (limits: content 2000 chars,
10 embeds, 6000 embed characters in total, files over the upload limit are refused with 413/40005).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .state import EPHEMERAL, LOADING, DiscordError, Message
from .world import iso

if TYPE_CHECKING:
    from .server import FakeDiscord

SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2 = 1 << 2, 1 << 12, 1 << 15
SETTABLE_FLAGS = EPHEMERAL | SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2
FILE_FIELD = re.compile(r"^files\[(\d+)\]$")


@dataclass
class UploadedFile:
    index: int
    filename: str
    data: bytes
    content_type: str | None


async def read_payload(request: web.Request, upload_limit: int) -> tuple[dict[str, Any], list[UploadedFile]]:
    """The JSON payload and the uploaded files of a request."""
    if request.content_type == "multipart/form-data":
        payload: dict[str, Any] = {}
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            data = await part.read()  # type: ignore[union-attr]
            name = part.name or ""
            if name == "payload_json":
                payload = json.loads(data)
            elif match := FILE_FIELD.match(name):
                files.append(UploadedFile(int(match[1]), part.filename or "unknown",  # type: ignore[union-attr]
                                          bytes(data), part.headers.get("Content-Type")))
            else:
                raise DiscordError(400, 50035, f"Invalid Form Body: unexpected field {name!r}")
        for f in files:
            if len(f.data) > upload_limit:
                raise DiscordError(413, 40005, "Request entity too large")
        return payload, files
    body = await request.read()
    if not body:
        return {}, []
    if request.content_type != "application/json":
        raise DiscordError(400, 50035, f"Invalid Form Body: content type {request.content_type!r}")
    return json.loads(body), []


def _validate(payload: dict[str, Any]) -> None:
    errors = []
    content = payload.get("content")
    if content is not None and len(content) > 2000:
        errors.append("content: Must be 2000 or fewer in length.")
    embeds = payload.get("embeds") or []
    if len(embeds) > 10:
        errors.append("embeds: Must be 10 or fewer in length.")
    total = 0
    for e in embeds:
        total += len(e.get("title") or "") + len(e.get("description") or "")
        total += len((e.get("footer") or {}).get("text") or "") + len((e.get("author") or {}).get("name") or "")
        total += sum(len(f.get("name", "")) + len(f.get("value", "")) for f in e.get("fields") or [])
        if len(e.get("description") or "") > 4096:
            errors.append("embeds.description: Must be 4096 or fewer in length.")
        if any(len(f.get("value", "")) > 1024 for f in e.get("fields") or []):
            errors.append("embeds.fields.value: Must be 1024 or fewer in length.")
    if total > 6000:
        errors.append("embeds: Embed size exceeds maximum size of 6000")
    rows = payload.get("components") or []
    if not (payload.get("flags", 0) & IS_COMPONENTS_V2):
        if len(rows) > 5 or any(len(r.get("components", [])) > 5 for r in rows):
            errors.append("components: at most 5 action rows of 5 components")
    for comp in rows:
        for c in comp.get("components", []):
            if len(c.get("custom_id", "")) > 100:
                errors.append("components.custom_id: Must be 100 or fewer in length.")
    if errors:
        raise DiscordError(400, 50035, "Invalid Form Body", extra={"errors": errors})


def apply_payload(fake: FakeDiscord, msg: Message, payload: dict[str, Any], files: list[UploadedFile],
                  *, creating: bool) -> None:
    """Apply a create/edit payload to ``msg`` with Discord's attachment semantics.

    On edit, an ``attachments`` array lists the existing attachments to keep (by id) plus the new
    uploads; without it, new uploads are appended.
    """
    _validate(payload)
    names = {int(a["id"]): a for a in payload.get("attachments") or [] if str(a.get("id", "")).isdigit()}
    uploaded = []
    for f in sorted(files, key=lambda f: f.index):
        meta = names.get(f.index, {})
        uploaded.append(fake.store_attachment(msg.channel_id, meta.get("filename") or f.filename, f.data,
                                              f.content_type, meta.get("description")))
    if "attachments" in payload and not creating:
        keep = {int(a["id"]) for a in payload["attachments"] or []}
        msg.attachments = [a for a in msg.attachments if a.id in keep]
    msg.attachments = [*msg.attachments, *uploaded]
    if "content" in payload:
        msg.content = payload["content"] or ""
    if "embeds" in payload:
        msg.embeds = payload["embeds"] or []
    if "components" in payload:
        msg.components = _with_ids(payload["components"] or [])
    if "poll" in payload and creating:
        msg.poll = payload["poll"]
    if creating:
        msg.tts = bool(payload.get("tts"))
        msg.message_reference = payload.get("message_reference")
        msg.flags |= int(payload.get("flags") or 0) & SETTABLE_FLAGS
    elif "flags" in payload and payload["flags"] is not None:
        msg.flags = (msg.flags & ~(SUPPRESS_EMBEDS)) | (int(payload["flags"]) & SUPPRESS_EMBEDS)
    if creating and not (msg.content or msg.embeds or msg.attachments or msg.components or msg.poll):
        raise DiscordError(400, 50006, "Cannot send an empty message")
    if not creating:
        msg.flags &= ~LOADING
        msg.edits += 1
        msg.edited_timestamp = iso()


def _with_ids(components: list[dict[str, Any]], counter: list[int] | None = None) -> list[dict[str, Any]]:
    """Discord numbers every component (``id``) when the client leaves it out."""
    counter = counter if counter is not None else [0]
    out = []
    for comp in components:
        comp = dict(comp)
        counter[0] += 1
        comp.setdefault("id", counter[0])
        if "components" in comp:
            comp["components"] = _with_ids(comp["components"], counter)
        for key in ("accessory", "component"):
            if isinstance(comp.get(key), dict):
                comp[key] = _with_ids([comp[key]], counter)[0]
        out.append(comp)
    return out
