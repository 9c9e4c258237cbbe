"""Interaction responses and the interaction webhook (followups, @original).

https://discord.com/developers/docs/interactions/receiving-and-responding: the initial response must
arrive within 3 s (else 404/10062 Unknown interaction) and only once (400/40060); the token then
works for 15 minutes (after that 401/50027 Invalid Webhook Token); followups need an acknowledged
interaction (404/10015 Unknown Webhook); the first followup after a deferred "thinking" response
edits that placeholder instead of creating a new message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .builders import message_json
from .messages import apply_payload, read_payload
from .rest import json_response, no_content
from .state import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    EPHEMERAL,
    LOADING,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PING,
    DiscordError,
    Interaction,
    Message,
)

if TYPE_CHECKING:
    from .server import FakeDiscord

# https://discord.com/developers/docs/interactions/receiving-and-responding#interaction-response-object-interaction-callback-type
PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, AUTOCOMPLETE_RESULT, MODAL = 1, 4, 5, 6, 7, 8, 9
ALLOWED = {
    PING: {PONG},
    APPLICATION_COMMAND: {MESSAGE, DEFERRED_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
    MODAL_SUBMIT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE},
}


class InteractionRoutes:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        router.add_route("POST", prefix + "/interactions/{interaction_id}/{token}/callback", self.callback)
        router.add_route("POST", prefix + "/webhooks/{app_id}/{token}", self.followup)
        for method, handler in (("GET", self.get), ("PATCH", self.edit), ("DELETE", self.delete)):
            router.add_route(method, prefix + "/webhooks/{app_id}/{token}/messages/{message_id}", handler)

    # -- lookups ------------------------------------------------------------------------------
    def _fail(self, inter: Interaction | None, error: DiscordError) -> DiscordError:
        if inter is not None:
            inter.error_codes.append(error.code)
            self.fake.changed()
        return error

    def _by_token(self, request: web.Request) -> Interaction:
        inter = self.fake.interactions_by_token.get(request.match_info["token"])
        if inter is None or int(request.match_info["app_id"]) != self.fake.world.app_id:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        if inter.expired():
            raise self._fail(inter, DiscordError(401, 50027, "Invalid Webhook Token"))
        if not inter.acked:
            raise self._fail(inter, DiscordError(404, 10015, "Unknown Webhook"))
        return inter

    def _target(self, inter: Interaction, message_id: str) -> Message:
        if message_id == "@original":
            msg = inter.original
        else:
            msg = next((m for m in inter.messages if m.id == int(message_id)), None)
        if msg is None or msg.deleted:
            raise self._fail(inter, DiscordError(404, 10008, "Unknown Message"))
        return msg

    # -- callback -----------------------------------------------------------------------------
    async def callback(self, request: web.Request) -> web.Response:
        arrived = self.fake.clock.now()  # Discord counts the deadline to the callback's arrival
        inter = self.fake.interactions.get(int(request.match_info["interaction_id"]))
        if inter is None or inter.token != request.match_info["token"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        payload, files = await read_payload(request, self.fake.upload_limit)
        if inter.acked:
            raise self._fail(inter, DiscordError(400, 40060, "Interaction has already been acknowledged."))
        if inter.past_ack_deadline():
            raise self._fail(inter, DiscordError(404, 10062, "Unknown interaction"))
        kind = int(payload.get("type", 0))
        if kind not in ALLOWED.get(inter.type, set()):
            raise self._fail(inter, DiscordError(400, 50035, f"Invalid Form Body: callback type {kind} "
                                                             f"for interaction type {inter.type}"))
        data: dict[str, Any] = payload.get("data") or {}
        message: Message | None = None
        if kind == MESSAGE:
            message = self._new_response(inter, flags=int(data.get("flags") or 0) & EPHEMERAL)
            apply_payload(self.fake, message, data, files, creating=True)
        elif kind == DEFERRED_MESSAGE:
            message = self._new_response(inter, flags=LOADING | (int(data.get("flags") or 0) & EPHEMERAL))
            inter.deferred = True
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            message = self.fake.messages.get(inter.message_id or 0)
            if message is None:
                raise self._fail(inter, DiscordError(400, 50035, "Invalid Form Body: no message to update"))
            inter.original = message
            inter.deferred = kind == DEFERRED_UPDATE
            if kind == UPDATE_MESSAGE:
                apply_payload(self.fake, message, data, files, creating=False)
        elif kind == AUTOCOMPLETE_RESULT:
            choices = data.get("choices") or []
            if len(choices) > 25:
                raise self._fail(inter, DiscordError(400, 50035, "Invalid Form Body: at most 25 choices"))
            inter.choices = choices
        elif kind == MODAL:
            inter.modal = data
        inter.responses.append(payload)
        inter.acked, inter.ack_type = True, kind
        inter.acked_at = arrived
        inter.ephemeral = bool(message and message.ephemeral)
        if message is not None and kind in (MESSAGE, DEFERRED_MESSAGE):
            await self.fake.publish(message)
        elif message is not None and kind == UPDATE_MESSAGE:
            await self.fake.publish(message, edited=True)
        self.fake.changed()
        body: dict[str, Any] = {"interaction": {
            "id": str(inter.id), "type": inter.type, "response_message_id": str(message.id) if message else None,
            "response_message_loading": kind == DEFERRED_MESSAGE,
            "response_message_ephemeral": bool(message and message.ephemeral),
        }, "resource": {"type": kind}}
        if message is not None:
            body["resource"]["message"] = message_json(self.fake, message)
        return json_response(body)

    def _new_response(self, inter: Interaction, *, flags: int) -> Message:
        msg = self.fake.new_message(inter.channel_id, self.fake.world.bot_user_id, webhook=True,
                                    interaction_id=inter.id)
        msg.type = 20 if inter.type == APPLICATION_COMMAND else 0
        msg.flags = flags
        inter.original = msg
        return msg

    # -- webhook ------------------------------------------------------------------------------
    async def followup(self, request: web.Request) -> web.Response:
        inter = self._by_token(request)
        payload, files = await read_payload(request, self.fake.upload_limit)
        placeholder = inter.original
        # Discord: the first followup after a defer replaces "thinking..." (keeping the defer's flags);
        # once the placeholder is deleted, a followup is a new message with flags of its own.
        if inter.ack_type == DEFERRED_MESSAGE and placeholder is not None and placeholder.loading \
                and not placeholder.deleted:
            apply_payload(self.fake, placeholder, payload, files, creating=False)
            placeholder.edits -= 1  # replacing "thinking..." is the response, not an edit
            msg = placeholder
            await self.fake.publish(msg, edited=True)
        else:
            msg = self.fake.new_message(inter.channel_id, self.fake.world.bot_user_id, webhook=True,
                                        interaction_id=inter.id)
            msg.type = 20 if inter.type == APPLICATION_COMMAND else 0
            apply_payload(self.fake, msg, payload, files, creating=True)
            await self.fake.publish(msg)
        inter.followups.append(msg)
        self.fake.changed()
        if request.query.get("wait", "false").lower() in ("1", "true"):
            return json_response(message_json(self.fake, msg))
        return no_content()

    async def get(self, request: web.Request) -> web.Response:
        inter = self._by_token(request)
        return json_response(message_json(self.fake, self._target(inter, request.match_info["message_id"])))

    async def edit(self, request: web.Request) -> web.Response:
        inter = self._by_token(request)
        msg = self._target(inter, request.match_info["message_id"])
        payload, files = await read_payload(request, self.fake.upload_limit)
        apply_payload(self.fake, msg, payload, files, creating=False)
        await self.fake.publish(msg, edited=True)
        return json_response(message_json(self.fake, msg))

    async def delete(self, request: web.Request) -> web.Response:
        inter = self._by_token(request)
        await self.fake.delete_message(self._target(inter, request.match_info["message_id"]))
        return no_content()
