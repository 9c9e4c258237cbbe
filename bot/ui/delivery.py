"""Delivery over Discord: queue position, progress and results, edited into one message per job.

The interaction token (stored with the job) lets any process edit the original response for 15
minutes. When it has expired, or Discord says so (401/50027, 404/10015), the result goes to the
channel with the bot token and mentions the member (a private job's goes to the member's DMs): a
result is never lost because a queue was long.
Files are re-encoded to fit the upload limit the interaction reported. A seamless tile's result
carries a second file, the tile repeated 2x2, when both fit.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot.params import canvas, describe
from bot.ui import render
from bot.ui.components import queued_view, result_view
from db.models import Job, Output
from inference.media import TooLarge, fit_to_limit
from inference.video import GIF, MP4, VideoTooLarge, fit_video, sniff_mime

log = logging.getLogger(__name__)

TOKEN_LIFETIME = timedelta(minutes=15)
# Stop using a token a little before Discord does, so an edit never races the expiry.
TOKEN_MARGIN = timedelta(seconds=30)
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
MAX_TRACKED = 5000
# Channel uploads refused with 413 are retried this many times, each at a quarter of the size.
CHANNEL_ATTEMPTS = 5
_QUEUED, _RUNNING, _DONE = 0, 1, 2
# Codes meaning "this interaction token can no longer be used": invalid webhook token, unknown
# webhook, unknown interaction.
_DEAD_TOKEN_CODES = {50027, 10015, 10062}


def token_is_dead(exc: discord.HTTPException) -> bool:
    return exc.status == 401 or exc.code in _DEAD_TOKEN_CODES


class DiscordDelivery:
    def __init__(self, client: discord.Client) -> None:
        self.client = client
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._stage: dict[int, int] = {}
        self._dead_tokens: set[int] = set()

    # ----- the Delivery protocol -----

    async def show_queued(self, job: Job, position: int, total: int, eta_seconds: float | None, *,
                          paused: bool = False) -> int | None:
        if self._stage.get(job.id) == _DONE:
            return None
        async with self._locks[job.id]:
            if self._stage.get(job.id, _QUEUED) > _QUEUED:
                return None
            embed = render.queued_embed(job, position, total, eta_seconds, paused=paused)
            message = await self._edit(job, content=None, embed=embed,
                                       view=queued_view(job))
            return message.id if message is not None else None

    async def show_progress(self, job: Job, step: int, total: int) -> None:
        await self._while_running(job, embed=render.progress_embed(job, step, total))

    async def show_sample(self, job: Job, step: int, total: int, png: bytes) -> None:
        """Progress with the latest sample image (a training job's LoRA so far)."""
        await self._while_running(job, embed=render.progress_embed(job, step, total, sample=render.SAMPLE_FILE),
                                  attachments=[discord.File(io.BytesIO(png), filename=render.SAMPLE_FILE)])

    async def show_loading(self, job: Job, model: str, done: int, total: int) -> None:
        await self._while_running(job, embed=render.loading_embed(job, model, done, total), started=False)

    async def _while_running(self, job: Job, *, started: bool = True, **edit: Any) -> None:
        """Edit the card of a job that is not finished yet (a late progress event never overwrites
        its result); ``started``: the job's steps have begun (a download has not)."""
        if self._stage.get(job.id) == _DONE:
            return
        async with self._locks[job.id]:
            if self._stage.get(job.id, _QUEUED) >= _DONE:
                return
            if started:
                self._stage[job.id] = _RUNNING
            await self._edit(job, view=queued_view(job), **edit)

    async def deliver(self, job: Job, outputs: list[Output]) -> int | None:
        async with self._locks[job.id]:
            self._stage[job.id] = _DONE
            try:
                return await self._deliver(job, outputs)
            finally:
                self._release(job.id)

    async def deliver_failure(self, job: Job, message: str) -> None:
        async with self._locks[job.id]:
            self._stage[job.id] = _DONE
            try:
                embed = render.failure_embed(job, message)
                edited = await self._edit(job, content=f"<@{job.user_id}>", embed=embed, view=None, attachments=[])
                if edited is None:
                    channel = await self._fallback(job)
                    await channel.send(content=f"<@{job.user_id}>", embed=embed, allowed_mentions=_mention(job))
            finally:
                self._release(job.id)

    # ----- internals -----

    async def _deliver(self, job: Job, outputs: list[Output]) -> int | None:
        if not outputs:
            raise ValueError(f"job {job.id} has no outputs to deliver")
        output = render.result_output(outputs)
        content = f"<@{job.user_id}>"
        refused_at: int | None = None
        webhook = self._webhook(job)
        if webhook is not None:
            limit = job.upload_limit or DEFAULT_UPLOAD_LIMIT
            kwargs = await self._result_kwargs(job, output, limit)
            try:
                message = await webhook.edit_message("@original", content=content, allowed_mentions=_mention(job), **kwargs)
                return message.id
            except discord.HTTPException as exc:
                if exc.status == 413:
                    refused_at = limit
                    log.warning("job %s: upload refused as too large; posting to the channel instead", job.id)
                elif token_is_dead(exc):
                    self._dead_tokens.add(job.id)
                else:
                    raise
        channel = await self._fallback(job)
        limit = getattr(getattr(channel, "guild", None), "filesize_limit", None) or DEFAULT_UPLOAD_LIMIT
        limit = min(limit, job.upload_limit or limit)
        if refused_at is not None:
            limit = min(limit, refused_at // 4)
        for attempt in range(CHANNEL_ATTEMPTS):
            try:
                return await self._post_to_channel(job, channel, output, content, limit)
            except discord.HTTPException as exc:
                if exc.status != 413 or attempt == CHANNEL_ATTEMPTS - 1:
                    raise
                # The limit we assumed was wrong (e.g. a guild lost its boosts): aim lower and retry.
                log.warning("job %s: a file under %d bytes was refused as too large; re-encoding smaller",
                            job.id, limit)
                limit //= 4
        raise AssertionError("unreachable")

    async def _post_to_channel(self, job: Job, channel: Any, output: Output, content: str, limit: int) -> int:
        kwargs = await self._result_kwargs(job, output, limit)
        if job.interaction_token is None and job.message_id is not None:
            # A channel job (e.g. a 🔄 reroll) already has its message: turn it into the result.
            try:
                message = await channel.get_partial_message(job.message_id).edit(
                    content=content, allowed_mentions=_mention(job), **kwargs)
                return message.id
            except discord.NotFound:
                log.info("job %s: its message was deleted; posting a new one", job.id)
            kwargs = await self._result_kwargs(job, output, limit)  # files are consumed by a send
        if "attachments" in kwargs:
            kwargs["files"] = kwargs.pop("attachments")
        message = await channel.send(content=content, allowed_mentions=_mention(job), **kwargs)
        return message.id

    async def _result_kwargs(self, job: Job, output: Output, limit: int) -> dict[str, Any]:
        mime = output.mime if output.mime != "image/png" else sniff_mime(output.data)
        video = mime in (MP4, GIF)
        fit, too_large = (fit_video, VideoTooLarge) if video else (fit_to_limit, TooLarge)
        try:
            data, extension = await asyncio.to_thread(fit, output.data, limit)
        except too_large:
            embed = render.failure_embed(job, f"The {'video' if video else 'image'} could not be made smaller "
                                              f"than the upload limit ({limit / 2**20:.1f} MiB).")
            return {"embed": embed, "view": result_view(job), "attachments": []}
        file = render.result_file(job, data, extension)
        prompts = await asyncio.to_thread(describe.prompts_of, output.data) if job.command == "describe" else None
        files = [file]
        if job.params.get("tile") and not video:  # a seamless tile: a 2x2 repeat beside it shows the seams vanish
            preview = await asyncio.to_thread(canvas.tile_preview, output.data)
            if len(data) + len(preview) <= limit:
                files.append(discord.File(io.BytesIO(preview), filename=f"atelier_{job.id}_tiled_2x2.png",
                                          description="The tile repeated 2x2"))
        return {"embed": render.result_embed(job, file.filename, prompts), "view": result_view(job, len(prompts or [])),
                "attachments": files}

    def _webhook(self, job: Job) -> discord.Webhook | None:
        if not job.interaction_token or not job.application_id or job.id in self._dead_tokens:
            return None
        if job.interaction_at is not None:
            at = job.interaction_at if job.interaction_at.tzinfo else job.interaction_at.replace(tzinfo=UTC)
            if datetime.now(UTC) - at > TOKEN_LIFETIME - TOKEN_MARGIN:
                return None
        return discord.Webhook.partial(job.application_id, job.interaction_token, client=self.client)

    async def _edit(self, job: Job, **kwargs: Any) -> discord.Message | None:
        """Edit the job's message; None when there is no message this process may still edit."""
        webhook = self._webhook(job)
        if webhook is not None:
            try:
                return await webhook.edit_message("@original", **kwargs)
            except discord.HTTPException as exc:
                if not token_is_dead(exc):
                    raise
                self._dead_tokens.add(job.id)
                return None
        if job.interaction_token is None and job.message_id is not None:
            channel = await self._channel(job)
            return await channel.get_partial_message(job.message_id).edit(**kwargs)
        return None

    async def _fallback(self, job: Job) -> Any:
        """Where a result goes when the interaction can no longer be edited: the job's channel, or, for a
        private job (/settings private), the member's DMs, so it is never shown to the channel. With
        their DMs closed the send fails and the result waits in /history (/show)."""
        if job.params.get("private"):
            user = self.client.get_user(job.user_id) or await self.client.fetch_user(job.user_id)
            return await user.create_dm()
        return await self._channel(job)

    async def _channel(self, job: Job) -> Any:
        if job.channel_id is None:
            raise ValueError(f"job {job.id} has no channel to deliver to")
        channel = self.client.get_channel(job.channel_id)
        if channel is None:
            channel = await self.client.fetch_channel(job.channel_id)
        return channel

    def _release(self, job_id: int) -> None:
        # The stage stays _DONE so a progress edit still in flight never overwrites the result
        # (only the oldest finished jobs are forgotten, to bound memory). The lock goes now: an
        # update waiting on it still holds it and finds the job done; later ones return before
        # taking one, so a finished job keeps no lock.
        self._dead_tokens.discard(job_id)
        self._locks.pop(job_id, None)
        if len(self._stage) > MAX_TRACKED:
            for old in [j for j, stage in self._stage.items() if stage == _DONE][: MAX_TRACKED // 2]:
                self._stage.pop(old, None)


def _mention(job: Job) -> discord.AllowedMentions:
    return discord.AllowedMentions(users=[discord.Object(job.user_id)], roles=False, everyone=False)
