"""What people do in the Discord client, as the fake sends it to the bot.

Each action builds the payload the real client/server would produce (from the synced command
schema or the message the bot really sent) and refuses what the client would not let a user do:
unknown commands or options, clicks on missing or disabled components.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from .builders import interaction_json
from .options import FileSpec, build_command_data, find_command
from .state import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    Message,
    iter_components,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

# https://discord.com/developers/docs/components/reference#component-object-component-types
BUTTON, TEXT_INPUT = 2, 4
SELECTS = {3, 5, 6, 7, 8}


class UserActions:
    async def slash(self: FakeDiscord, command: str, options: dict[str, Any] | None = None, *,
                    user_id: int | None = None, channel_id: int | None = None,
                    attachments: dict[str, FileSpec] | None = None) -> Interaction:
        """A user runs ``/command [subcommand...]`` with ``options``; returns the interaction record."""
        channel_id = channel_id or self.channel_id
        data = build_command_data(self, command, options or {}, channel_id=channel_id, attachments=attachments)
        return await self._interact(APPLICATION_COMMAND, data, user_id, channel_id)

    async def autocomplete(self: FakeDiscord, command: str, options: dict[str, Any], *, focused: str,
                           user_id: int | None = None, channel_id: int | None = None) -> Interaction:
        """The user is typing into option ``focused``; ``record.choices`` holds the bot's answer."""
        channel_id = channel_id or self.channel_id
        data = build_command_data(self, command, options, channel_id=channel_id, focused=focused)
        return await self._interact(AUTOCOMPLETE, data, user_id, channel_id)

    async def context_menu(self: FakeDiscord, name: str, target_id: int, *, user_id: int | None = None,
                           channel_id: int | None = None) -> Interaction:
        """A user or message context-menu command on ``target_id`` (a user id or a message id)."""
        channel_id = channel_id or self.channel_id
        if target_id in self.messages:
            cmd = find_command(self, name, 3)
            resolved = {"messages": {str(target_id): self._message_payload(self.messages[target_id])}}
        else:
            cmd = find_command(self, name, 2)
            resolved = {"users": {str(target_id): self.world.users[target_id]}}
            if self.world.member(target_id, self.world.guild_of(channel_id)) is not None:
                member = self.world.interaction_member(target_id, channel_id)
                resolved["members"] = {str(target_id): {k: v for k, v in member.items() if k != "user"}}
        data = {"id": cmd["id"], "name": cmd["name"], "type": cmd["type"], "target_id": str(target_id),
                "resolved": resolved}
        return await self._interact(APPLICATION_COMMAND, data, user_id, channel_id)

    async def click(self: FakeDiscord, message_id: int, custom_id: str, *, user_id: int | None = None,
                    channel_id: int | None = None, values: list[str] | None = None) -> Interaction:
        """A user clicks a button (or picks ``values`` in a select) on a message the bot sent."""
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted:
            raise LookupError(f"no message {message_id} to click on")
        component = msg.find_component(custom_id)
        if component is None:
            raise LookupError(f"message {message_id} has no component {custom_id!r}; it has {msg.custom_ids}")
        if component.get("disabled"):
            raise PermissionError(f"component {custom_id!r} is disabled; the client cannot click it")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"], "id": component.get("id")}
        if component["type"] in SELECTS:
            data["values"] = list(values or [])
        elif values is not None:
            raise ValueError(f"{custom_id!r} is not a select menu")
        channel_id = channel_id or msg.channel_id
        return await self._interact(MESSAGE_COMPONENT, data, user_id, channel_id, message=msg)

    async def submit_modal(self: FakeDiscord, shown_by: Interaction, values: dict[str, str], *,
                           user_id: int | None = None) -> Interaction:
        """Submit the modal the bot showed in answer to ``shown_by`` with text input ``values``."""
        if shown_by.modal is None:
            raise LookupError(f"interaction {shown_by.id} did not open a modal")
        modal = shown_by.modal
        inputs = {c["custom_id"] for c in iter_components(modal["components"]) if c.get("type") == TEXT_INPUT}
        unknown = set(values) - inputs
        if unknown:
            raise ValueError(f"modal {modal['custom_id']!r} has no inputs {sorted(unknown)}; it has {sorted(inputs)}")
        data = {"custom_id": modal["custom_id"], "components": _submitted(modal["components"], values)}
        message = self.messages.get(shown_by.message_id or 0)
        return await self._interact(MODAL_SUBMIT, data, user_id or shown_by.user_id, shown_by.channel_id,
                                    message=message)

    async def react(self: FakeDiscord, message_id: int, emoji: str, *, user_id: int | None = None,
                    burst: bool = False) -> None:
        """A user adds a reaction: MESSAGE_REACTION_ADD (raw event with ``type`` and ``burst``)."""
        msg = self.messages.get(message_id)
        if msg is None or msg.deleted:
            raise LookupError(f"no message {message_id} to react to")
        await self.add_reaction(msg, emoji, user_id or self.user_id, burst=burst)

    async def unreact(self: FakeDiscord, message_id: int, emoji: str, *, user_id: int | None = None) -> None:
        await self.remove_reaction(self.messages[message_id], emoji, user_id or self.user_id)

    async def user_message(self: FakeDiscord, content: str, *, user_id: int | None = None,
                           channel_id: int | None = None) -> Message:
        """A user posts in a channel (MESSAGE_CREATE; content hidden without the MESSAGE_CONTENT intent)."""
        user_id = user_id or self.user_id
        channel_id = channel_id or self.channel_id
        msg = self.new_message(channel_id, user_id)
        msg.content = content
        await self.publish(msg)
        return msg

    async def gateway_reconnect(self: FakeDiscord, timeout: float = 5.0) -> None:
        """Send op 7 RECONNECT and wait until the client has resumed."""
        before = self.gateway.resumes
        await self.gateway.reconnect()
        await self.wait_for(lambda f: f.gateway.resumes > before and any(s.identified for s in f.gateway.sessions),
                            timeout=timeout, what="gateway resume")

    # -- plumbing -------------------------------------------------------------------------------
    def _message_payload(self: FakeDiscord, msg: Message) -> dict[str, Any]:
        from .builders import message_json

        return message_json(self, msg)

    async def _interact(self: FakeDiscord, type_: int, data: dict[str, Any], user_id: int | None,
                        channel_id: int, *, message: Message | None = None) -> Interaction:
        record = self._prepare(type_, data, user_id, channel_id, message=message)
        await self._send_interaction(record)
        return record

    async def slash_burst(self: FakeDiscord, calls: list[tuple[str, dict[str, Any], int]], *,
                          channel_id: int | None = None) -> list[Interaction]:
        """Many members run commands at the same instant: every (command, options, user_id) is built
        first, then all are sent back to back, each stamped as it goes out (for latency benches)."""
        channel_id = channel_id or self.channel_id
        records = [self._prepare(APPLICATION_COMMAND, build_command_data(self, command, options, channel_id=channel_id),
                                 user_id, channel_id) for command, options, user_id in calls]
        for record in records:
            await self._send_interaction(record)
        return records

    def _prepare(self: FakeDiscord, type_: int, data: dict[str, Any], user_id: int | None,
                 channel_id: int, *, message: Message | None = None) -> Interaction:
        user_id = user_id or self.user_id
        if channel_id not in self.world.channels:
            raise LookupError(f"unknown channel {channel_id}")
        guild_id = self.world.guild_of(channel_id)
        if guild_id is not None and self.world.member(user_id, guild_id) is None:
            raise LookupError(f"user {user_id} is not a member of guild {guild_id}; use fake.add_member first")
        interaction_id = self.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(48)
        payload = interaction_json(self, interaction_id=interaction_id, token=token, type_=type_, data=data,
                                   user_id=user_id, channel_id=channel_id, message=message)
        return Interaction(fake=self, id=interaction_id, token=token, type=type_, user_id=user_id,
                           channel_id=channel_id, guild_id=guild_id,
                           payload=payload, created_at=self.clock.now(),
                           message_id=message.id if message else None)

    async def _send_interaction(self: FakeDiscord, record: Interaction) -> None:
        self.interactions[record.id] = record
        self.interactions_by_token[record.token] = record
        record.created_at = self.clock.now()
        if not await self.gateway.dispatch("INTERACTION_CREATE", record.payload):
            raise RuntimeError("no identified gateway session: start the bot and await fake.wait_identified()")
        self.changed()


def _submitted(components: list[dict[str, Any]], values: dict[str, str]) -> list[dict[str, Any]]:
    """MODAL_SUBMIT echoes the modal's layout with each text input reduced to its id and value."""
    out = []
    for comp in components:
        if comp.get("type") == TEXT_INPUT:
            out.append({"type": TEXT_INPUT, "id": comp.get("id"), "custom_id": comp["custom_id"],
                        "value": values.get(comp["custom_id"], comp.get("value") or "")})
            continue
        item = {"type": comp["type"], "id": comp.get("id")}
        if "components" in comp:
            item["components"] = _submitted(comp["components"], values)
        if isinstance(comp.get("component"), dict):
            item["component"] = _submitted([comp["component"]], values)[0]
        out.append(item)
    return out
