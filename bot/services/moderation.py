"""ModerationService: the guild's policy applied to prompts, images and members, with a record of it.

A prompt is judged once per submission, and the verdict travels as a value: the command tree's
global check runs the rule layers before the command is acknowledged (so a refusal is an ephemeral
reply before anything is queued) and leaves its verdict on the Origin; the job service's screen
hook (every job, including rerolls by button or reaction) reuses it when it is the whole answer,
else judges the prompt with every layer, and hands the verdict on in the Submission to
before_submit, which records and enforces it inside the job's transaction. Finished images are
checked before they are posted. No discord import: reports to a guild's moderation channel go
through `reporter`, which bot/client.py passes in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import Banned, InvalidOption, Refused
from bot.services.hooks import PromptVerdict, Submission
from db.models import Job
from db.models_moderation import Ban, ModerationCase
from db.repositories import moderation as mod_repo
from inference import heap
from moderation import Action, Moderator, Policy, Verdict
from moderation.images import ImageChecker
from moderation.moderator import RulesScan

log = logging.getLogger(__name__)

CATEGORY_WORDS = {
    "sexual": "sexual content", "minors": "minors", "gore": "gore", "copyright": "a copyrighted character",
    "living-artist": "a living artist's style", "real-person": "a real person", "trademark": "a trademark",
}

Reporter = Callable[[ModerationCase], Awaitable[None]]
BAN_CACHE_SECONDS = 30.0
# Bans stored under this guild id are the owners' global bans (/admin ban-global): they apply in
# every server and in direct messages. No Discord snowflake is 0.
GLOBAL = 0


def _aware(when: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


# The rule layers' cost grows with the prompt's length: up to this many characters they run on the
# loop, where handing them to a thread would cost more than the check; longer prompts and the
# semantic model go to a thread.
INLINE_RULES_CHARS = 300


def _with_safety_negative(params: dict[str, Any], policy: Policy, nsfw_channel: bool) -> dict[str, Any]:
    """``params`` with the policy's safety negative prompt added (the same dict if there is none to add)."""
    addition = policy.negative_prompt_addition(nsfw_channel=nsfw_channel)
    if not addition or params.get("safety_negative"):  # rerolls and reruns carry it already
        return params
    negative = params.get("negative_prompt", "")
    return {**params, "negative_prompt": f"{negative}, {addition}" if negative else addition, "safety_negative": True}


class ModerationService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, moderator: Moderator,
                 images: ImageChecker | None = None, reads: async_sessionmaker[AsyncSession] | None = None,
                 reporter: Reporter | None = None) -> None:
        self.sessions = sessions
        # Lookups made before an interaction is acknowledged must never wait behind a writer.
        self.reads = reads or sessions
        self.moderator = moderator
        self.images = images
        self.reporter = reporter
        self._policies: dict[int, Policy] = {}
        self._bans: dict[int, tuple[float, dict[int, Ban]]] = {}
        self._ban_loads: dict[int, asyncio.Task[dict[int, Ban]]] = {}
        # The semantic layer joins only once loaded: loading takes seconds, and a command must be
        # acknowledged within 3 s, so until then prompts get the rule layers alone.
        self.semantic_ready = False

    async def warmup(self) -> bool:
        self.semantic_ready = await asyncio.to_thread(self.moderator.warmup)
        await asyncio.to_thread(heap.settle, "loading the moderation models")
        log.info("moderation ready (semantic layer %s)", "on" if self.semantic_ready else "off")
        return self.semantic_ready

    # ----- policy -----

    async def policy(self, guild_id: int | None) -> Policy:
        if guild_id is None:
            return Policy()
        cached = self._policies.get(guild_id)
        if cached is not None:
            return cached
        async with self.reads() as session:
            stored, _ = await mod_repo.get_policy(session, guild_id=guild_id)
        policy = Policy.from_dict(stored) if stored else Policy()
        self._policies[guild_id] = policy
        return policy

    async def save_policy(self, guild_id: int, policy: Policy) -> None:
        async with self.sessions.begin() as session:
            await mod_repo.save_policy(session, guild_id=guild_id, policy=policy.to_dict())
        self._policies[guild_id] = policy

    # ----- members -----

    async def ensure_not_banned(self, guild_id: int | None, user_id: int, session: AsyncSession | None = None) -> None:
        """Raise Banned for a barred member: a global ban (everywhere, DMs included), then the
        server's. With a session: from the database (inside a job's transaction); without: from a
        per-guild cache (checks before an acknowledgement must not queue on the database), refreshed
        every BAN_CACHE_SECONDS and at once on /mod ban|unban and /admin ban-global."""
        for scope in (GLOBAL,) if guild_id is None else (GLOBAL, guild_id):
            if session is None:
                ban = (await self._guild_bans(scope)).get(user_id)
            else:
                ban = await mod_repo.active_ban(session, guild_id=scope, user_id=user_id)
            if ban is None:
                continue
            until = _aware(ban.until)
            if until is not None and until <= datetime.now(UTC):
                continue
            when = f" until <t:{int(until.timestamp())}:f>" if until else ""
            reason = f" Reason: {ban.reason}" if ban.reason else ""
            if scope == GLOBAL:
                raise Banned(f"The bot's owners have barred you from Atelier everywhere{when}.{reason}")
            raise Banned(f"A moderator has barred you from Atelier in this server{when}.{reason}")

    async def _guild_bans(self, guild_id: int) -> dict[int, Ban]:
        """The guild's bans from the cache. A stale list is served while one refresh runs in the
        background; only a guild with no list yet waits, and a burst of commands shares one read."""
        cached = self._bans.get(guild_id)
        if cached is not None and time.monotonic() - cached[0] < BAN_CACHE_SECONDS:
            return cached[1]
        task = self._ban_loads.get(guild_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._load_bans(guild_id))
            self._ban_loads[guild_id] = task
        if cached is not None:
            return cached[1]
        return await asyncio.shield(task)

    async def _load_bans(self, guild_id: int) -> dict[int, Ban]:
        me = asyncio.current_task()
        try:
            async with self.reads() as session:
                bans = {ban.user_id: ban for ban in await mod_repo.list_bans(session, guild_id=guild_id)}
        finally:
            current = self._ban_loads.get(guild_id) is me
            if current:
                del self._ban_loads[guild_id]
        if current:  # a read overtaken by a ban or unban (see _bans_changed) is not cached
            self._bans[guild_id] = (time.monotonic(), bans)
        return bans

    def _bans_changed(self, guild_id: int) -> None:
        self._bans.pop(guild_id, None)
        self._ban_loads.pop(guild_id, None)

    def refresh_bans(self) -> None:
        """Drop every cached ban list (e.g. after /forget changed a member's rows): the next check reads."""
        self._bans.clear()
        self._ban_loads.clear()

    async def ban(self, *, guild_id: int, user_id: int, until: datetime | None, reason: str, moderator_id: int) -> None:
        async with self.sessions.begin() as session:
            await mod_repo.set_ban(session, guild_id=guild_id, user_id=user_id, until=until, reason=reason,
                                   moderator_id=moderator_id)
        self._bans_changed(guild_id)
        await self.record_action(action="ban", user_id=user_id, guild_id=guild_id, moderator_id=moderator_id,
                                 reason=reason, until=until)

    async def unban(self, *, guild_id: int, user_id: int, moderator_id: int) -> bool:
        async with self.sessions.begin() as session:
            removed = await mod_repo.remove_ban(session, guild_id=guild_id, user_id=user_id)
        self._bans_changed(guild_id)
        if removed:
            await self.record_action(action="unban", user_id=user_id, guild_id=guild_id, moderator_id=moderator_id)
        return removed

    # ----- prompts -----

    async def verdict(self, prompt: str, negative: str, *, guild_id: int | None, nsfw_channel: bool,
                      semantic: bool = True, scanned: RulesScan | None = None) -> Verdict:
        policy = await self.policy(guild_id)
        semantic = semantic and self.semantic_ready
        if not semantic and len(prompt) + len(negative) <= INLINE_RULES_CHARS:
            return self.moderator.check(prompt, negative, nsfw_channel=nsfw_channel, policy=policy, semantic=False,
                                        scanned=scanned)
        return await asyncio.to_thread(self.moderator.check, prompt, negative, nsfw_channel=nsfw_channel,
                                       policy=policy, semantic=semantic, scanned=scanned)

    async def _rules_verdict(self, prompt: str, negative: str, *, guild_id: int | None,
                             nsfw_channel: bool) -> tuple[Verdict, RulesScan]:
        policy = await self.policy(guild_id)

        def judge() -> tuple[Verdict, RulesScan]:
            scan = self.moderator.scan(prompt, negative, policy=policy)
            return self.moderator.check(prompt, negative, nsfw_channel=nsfw_channel, policy=policy, semantic=False,
                                        scanned=scan), scan

        if len(prompt) + len(negative) <= INLINE_RULES_CHARS:
            return judge()
        return await asyncio.to_thread(judge)

    async def precheck(self, prompt: str, negative: str, *, user_id: int, guild_id: int | None,
                       channel_id: int | None, nsfw_channel: bool) -> PromptVerdict:
        """Before a command is acknowledged: refuse (and record) a blocked prompt.

        Rule layers only: the semantic layer's CPU cost a prompt, times a burst of commands, would
        turn into missed 3 s deadlines. The verdict is returned for the submission (see screen):
        where it is the whole answer the prompt is not judged again."""
        verdict, scan = await self._rules_verdict(prompt, negative, guild_id=guild_id, nsfw_channel=nsfw_channel)
        if verdict.action is Action.BLOCK:
            async with self.sessions.begin() as session:
                case = await self._record(session, verdict, prompt=prompt, negative=negative, user_id=user_id,
                                          guild_id=guild_id, channel_id=channel_id)
            await self._report(case, verdict)
            raise refusal(verdict, case.id)
        return PromptVerdict(prompt, negative, guild_id, nsfw_channel, verdict, semantic=False, scan=scan)

    # Job service hooks (bot/services/hooks.py): every job, whatever started it.
    async def screen(self, submission: Submission) -> Submission:
        """Before the job's write transaction opens: the prompt's verdict, so the database's write
        lock is never held across a model call and a burst's submissions and the worker's claims
        do not queue behind each other's. The check made before the acknowledgement (on the Origin)
        stands when it judged this same text here and the semantic layer has nothing to add (not
        loaded, or off); otherwise the model layers judge it, continuing from that check's reading
        of the same text (its rules are not run again). A prompt that may run gets the guild's
        safety negative prompt now, so the job's row is written once."""
        params, origin = submission.params, submission.origin
        prompt, negative = params["prompt"], params.get("negative_prompt", "")
        nsfw_channel = bool(origin.nsfw_channel)
        checked = origin.prompt_verdict
        same = checked is not None and checked.judged(prompt, negative, origin.guild_id, nsfw_channel)
        if same and (checked.semantic or not self.semantic_ready):
            verdict = checked.verdict
        else:  # the model layers continue from the rule layers' reading where that read this text
            verdict = await self.verdict(prompt, negative, guild_id=origin.guild_id, nsfw_channel=nsfw_channel,
                                         scanned=checked.scan if same else None)
        if verdict.action is not Action.BLOCK:
            params = _with_safety_negative(params, await self.policy(origin.guild_id), nsfw_channel)
        return Submission(params, origin, verdict)

    async def before_submit(self, session: AsyncSession, job: Job, submission: Submission) -> None:
        await self.ensure_not_banned(job.guild_id, job.user_id, session)
        params, nsfw_channel = job.params, bool(submission.origin.nsfw_channel)
        verdict = submission.verdict
        if verdict is None:  # wired without the screen hook: judged here, inside the transaction
            verdict = await self.verdict(params["prompt"], params.get("negative_prompt", ""),
                                         guild_id=job.guild_id, nsfw_channel=nsfw_channel)
        if verdict.action is Action.ALLOW and not verdict.categories:
            self._apply_safety_negative(job, await self.policy(job.guild_id), nsfw_channel)
            return
        case = await self._record(session, verdict, prompt=params["prompt"], negative=params.get("negative_prompt", ""),
                                  user_id=job.user_id, guild_id=job.guild_id, channel_id=job.channel_id,
                                  job_id=job.id if verdict.action is not Action.BLOCK else None)
        if verdict.action is Action.BLOCK:
            await self._report(case, verdict)
            raise refusal(verdict, case.id)
        job.notice = f"⚠️ {verdict.reason}"
        self._apply_safety_negative(job, await self.policy(job.guild_id), nsfw_channel)

    @staticmethod
    def _apply_safety_negative(job: Job, policy: Policy, nsfw_channel: bool) -> None:
        params = _with_safety_negative(job.params, policy, nsfw_channel)
        if params is not job.params:  # not screened: the row is updated
            job.params = params

    # ----- images -----

    async def check_images(self, job: Job, pngs: list[bytes], *, nsfw_channel: bool) -> str | None:
        """Score finished images; the reason to withhold them, or None to post them."""
        if self.images is None or not pngs:
            return None
        policy = await self.policy(job.guild_id)
        verdicts = [await asyncio.to_thread(self.images.check, png, nsfw_channel=nsfw_channel,
                                            policy=policy) for png in pngs]
        worst = max(verdicts, key=lambda v: v.action.rank)
        if worst.action is not Action.BLOCK:
            return None
        async with self.sessions.begin() as session:
            case = await self._record(session, worst, prompt=job.prompt, negative=job.params.get("negative_prompt", ""),
                                      user_id=job.user_id, guild_id=job.guild_id, channel_id=job.channel_id,
                                      job_id=job.id)
        return (f"The image was not posted: the NSFW image filter scored it {worst.score:.2f} "
                f"(limit {policy.image_threshold:.2f}) and this channel is not age-restricted. Case #{case.id}.")

    async def screen_repost(self, job: Job, pngs: list[bytes], *, guild_id: int | None,
                            nsfw_channel: bool) -> str | None:
        """A finished job is about to be posted again (/show) somewhere else: its prompt and images
        must pass the moderation of the place it goes to, as a new job there would. Returns why
        not, or None. Records no case: nothing new was made."""
        negative = job.params.get("negative_prompt", "")
        verdict = await self.verdict(job.prompt, negative, guild_id=guild_id, nsfw_channel=nsfw_channel)
        if verdict.action is Action.BLOCK:
            words = ", ".join(CATEGORY_WORDS.get(c, c) for c in verdict.categories) or "its policy"
            return f"Job #{job.id}'s prompt is not allowed by this server's moderation here ({words})."
        if self.images is None or not pngs:
            return None
        policy = await self.policy(guild_id)
        for png in pngs:
            image = await asyncio.to_thread(self.images.check, png, nsfw_channel=nsfw_channel, policy=policy)
            if image.action is Action.BLOCK:
                return (f"Job #{job.id}'s image is not allowed by this server's moderation here: the NSFW image "
                        "filter flagged it and this channel is not age-restricted.")
        return None

    # ----- records -----

    async def _record(self, session: AsyncSession, verdict: Verdict, *, prompt: str, negative: str, user_id: int,
                      guild_id: int | None, channel_id: int | None, job_id: int | None = None) -> ModerationCase:
        return await mod_repo.record_case(session, case=ModerationCase(
            user_id=user_id, guild_id=guild_id, channel_id=channel_id, job_id=job_id, action=verdict.action.value,
            categories=list(verdict.categories), layer=verdict.layer, score=verdict.score, prompt=prompt[:4000],
            negative=negative[:2000], normalized=verdict.normalized[:4000], reason=verdict.reason,
            reported=verdict.report, details={"matched": list(verdict.matched)[:20]},
        ))

    async def _report(self, case: ModerationCase, verdict: Verdict) -> None:
        if verdict.report and self.reporter is not None:
            try:
                await self.reporter(case)
            except Exception:
                log.exception("could not report case %s to the moderation channel", case.id)

    async def request_review(self, case_id: int, user_id: int) -> ModerationCase | None:
        async with self.sessions.begin() as session:
            case = await mod_repo.get_case(session, case_id=case_id)
            if case is None or case.user_id != user_id:
                return None
            if case.review_requested:  # one request per case: the button can't page the moderators twice
                raise InvalidOption(f"You already asked for a review of case #{case_id}; the moderators have it.")
            case.review_requested = True
        return case

    async def record_action(self, *, action: str, user_id: int, guild_id: int | None, moderator_id: int,
                            reason: str = "", job_id: int | None = None, until: datetime | None = None) -> ModerationCase:
        async with self.sessions.begin() as session:
            return await mod_repo.record_case(session, case=ModerationCase(
                user_id=user_id, guild_id=guild_id, action=action, moderator_id=moderator_id, reason=reason,
                job_id=job_id, layer="moderator",
                details={"until": until.isoformat() if until else None},
            ))


def refusal(verdict: Verdict, case_id: int | None) -> Refused:
    words = ", ".join(CATEGORY_WORDS.get(c, c) for c in verdict.categories) or "a policy"
    message = verdict.reason or f"This prompt was refused for {words}."
    return Refused(message, categories=list(verdict.categories), case_id=case_id)
