"""Turn ``fake.slash("mod ban", {"user": 123})`` into the ``data`` of an APPLICATION_COMMAND interaction.

Option types come from the schema the bot synced, as the Discord client would use it:
https://discord.com/developers/docs/interactions/application-commands#application-command-object-application-command-option-type
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .builders import attachment_json
from .state import Attachment

if TYPE_CHECKING:
    from .server import FakeDiscord

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = range(3, 12)

FileSpec = tuple[str, bytes, str]  # (filename, bytes, content type)


def find_command(fake: FakeDiscord, name: str, type_: int = 1) -> dict[str, Any]:
    for cmd in fake.commands.values():
        if cmd["name"] == name and cmd.get("type", 1) == type_:
            return cmd
    raise KeyError(f"no synced command {name!r} of type {type_}; synced: {sorted(fake.commands)}")


def build_command_data(fake: FakeDiscord, path: str, values: dict[str, Any], *, channel_id: int,
                       attachments: dict[str, FileSpec] | None = None,
                       focused: str | None = None) -> dict[str, Any]:
    parts = path.split()
    cmd = find_command(fake, parts[0])
    resolved: dict[str, dict[str, Any]] = {}
    data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
    if cmd.get("guild_id"):
        data["guild_id"] = cmd["guild_id"]
    node, container = cmd, data
    for part in parts[1:]:
        sub = next((o for o in node.get("options", []) if o["name"] == part
                    and o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)), None)
        if sub is None:
            raise KeyError(f"{path!r}: no subcommand {part!r} under {node['name']!r}")
        entry: dict[str, Any] = {"name": part, "type": sub["type"], "options": []}
        container.setdefault("options", []).append(entry)
        node, container = sub, entry
    schema = {o["name"]: o for o in node.get("options", [])}
    if any(o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP) for o in schema.values()):
        raise ValueError(f"{path!r} needs a subcommand: {sorted(schema)}")
    files = dict(attachments or {})
    files.update({k: v for k, v in values.items() if k in schema and schema[k]["type"] == ATTACHMENT})
    given = {**{k: v for k, v in values.items() if k not in files}, **dict.fromkeys(files)}
    unknown = set(given) - set(schema)
    if unknown:
        raise ValueError(f"{path!r} has no options {sorted(unknown)}; it has {sorted(schema)}")
    if focused is None:
        missing = [n for n, o in schema.items() if o.get("required") and n not in given]
        if missing:
            raise ValueError(f"{path!r}: required options missing: {missing}")
    if focused is not None and focused not in given:
        raise ValueError(f"focused option {focused!r} must be among the values")
    options = container.setdefault("options", [])
    for name in given:
        opt = schema[name]
        if name in files:
            value = _attachment(fake, files[name], channel_id, resolved)
        else:
            value = _value(fake, opt, values[name], resolved, is_focused=name == focused, channel_id=channel_id)
        entry = {"name": name, "type": opt["type"], "value": value}
        if name == focused:
            entry["focused"] = True
        options.append(entry)
    if not options:
        container.pop("options")
    if resolved:
        data["resolved"] = resolved
    return data


def _value(fake: FakeDiscord, opt: dict[str, Any], value: Any, resolved: dict[str, dict[str, Any]],
           *, is_focused: bool, channel_id: int | None = None) -> Any:
    kind = opt["type"]
    if is_focused:
        return str(value)  # autocomplete sends what the user has typed so far
    if kind == STRING:
        value = str(value)
    elif kind == INTEGER:
        value = int(value)
    elif kind == NUMBER:
        value = float(value)
    elif kind == BOOLEAN:
        value = bool(value)
    elif kind in (USER, CHANNEL, ROLE, MENTIONABLE):
        return _resolve(fake, kind, int(value), resolved, channel_id)
    choices = [c["value"] for c in opt.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"option {opt['name']!r}: {value!r} is not one of the choices {choices}")
    if kind in (INTEGER, NUMBER):
        lo, hi = opt.get("min_value"), opt.get("max_value")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"option {opt['name']!r}: {value} outside [{lo}, {hi}] (the client refuses it)")
    if kind == STRING:
        lo, hi = opt.get("min_length", 0), opt.get("max_length", 6000)
        if not lo <= len(value) <= hi:
            raise ValueError(f"option {opt['name']!r}: length {len(value)} outside [{lo}, {hi}]")
    return value


def _resolve(fake: FakeDiscord, kind: int, target: int, resolved: dict[str, dict[str, Any]],
             channel_id: int | None = None) -> str:
    world = fake.world
    # Members resolve in the guild the command is used in (the first guild from a DM).
    channel_id = channel_id if channel_id is not None and world.guild_of(channel_id) else world.channel_id
    if kind in (USER, MENTIONABLE) and target in world.users:
        resolved.setdefault("users", {})[str(target)] = world.users[target]
        if world.member(target, world.guild_of(channel_id)) is not None:
            member = world.interaction_member(target, channel_id)
            resolved.setdefault("members", {})[str(target)] = {k: v for k, v in member.items() if k != "user"}
    elif kind in (ROLE, MENTIONABLE) and target in world.roles:
        resolved.setdefault("roles", {})[str(target)] = world.roles[target]
    elif kind == CHANNEL and target in world.channels:
        ch = world.channels[target]
        resolved.setdefault("channels", {})[str(target)] = {
            **{k: ch.get(k) for k in ("id", "name", "type", "nsfw", "parent_id", "flags")},
            "permissions": str(world.permissions(world.user_id, target)),
        }
    else:
        raise LookupError(f"nothing with id {target} for option type {kind}")
    return str(target)


def _attachment(fake: FakeDiscord, spec: FileSpec, channel_id: int, resolved: dict[str, dict[str, Any]]) -> str:
    filename, data, content_type = spec
    att = fake.store_attachment(channel_id, filename, data, content_type)
    resolved.setdefault("attachments", {})[str(att.id)] = {**attachment_json(att), "ephemeral": True}
    return str(att.id)


def store_attachment_factory(fake: FakeDiscord, channel_id: int, filename: str, data: bytes,
                             content_type: str | None, description: str | None = None) -> Attachment:
    att_id = fake.snowflake()
    url = f"{fake.url}/cdn/attachments/{channel_id}/{att_id}/{filename}"
    att = Attachment(att_id, filename, data, content_type, url, description)
    fake.cdn[att_id] = att
    return att
