"""/train's side of the bot: who may train where, a training job's parameters, and the member LoRA
space (/loras: list, rename, share, delete; /forget removes them).

Files live under ``<train_dir>/loras/<user id>/<token>.safetensors`` (the engine writes them there,
inference/training/job.py); rows in ``member_loras`` give them the names members type. A LoRA is its
owner's alone until the owner, or a moderator of the server it was trained on, shares it there.
Training is off on every server until its admins turn it on (``/admin training``), optionally for
one role only; subjects that are real people need the server's separate opt-in and the member's
confirmation that they have the person's consent.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import InvalidOption, NotHere, NotYours, Refused
from db.models import Job
from db.models_training import MemberLora
from db.repositories import member_loras as repo
from inference.limits import MAX_LORA_WEIGHT, MIN_LORA_WEIGHT
from inference.lora import DEFAULT_WEIGHT as DEFAULT_LORA_WEIGHT
from inference.training.job import FAMILY_OF_KIND, SAMPLE, pack_images, work_dir
from inference.training.library import MEMBER_PREFIX
from inference.training.settings import TrainingSettings
from moderation.policy import Action

log = logging.getLogger(__name__)

TRAIN_COMMAND = "train"
# The value of a member LoRA in /imagine's lora autocomplete: "member:<row id>" (checked on use).
CHOICE_PREFIX = "member:"
SPACE = "loras"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _\-]{0,31}$")


@dataclass(frozen=True, slots=True)
class TrainingRules:
    enabled: bool = False
    role_id: int | None = None
    real_people: bool = False


@dataclass(frozen=True, slots=True)
class LoraEntry:
    """A member LoRA as the bot shows it."""

    id: int
    name: str
    owner_id: int
    trigger: str
    base_model: str
    family: str
    kind: str
    shared: bool
    library_name: str  # the name the engine's member-LoRA library lists the file under

    def label(self, viewer_id: int) -> str:
        owner = "yours" if self.owner_id == viewer_id else "shared"
        return f"{self.name} ({owner}, {self.kind}, trigger {self.trigger})"


def check_name(name: str) -> str:
    name = " ".join(name.split())
    if not _NAME.match(name):
        raise InvalidOption("A LoRA name is 1-32 letters, digits, spaces, _ or -, starting with a letter or digit.")
    return name


def _entry(row: MemberLora) -> LoraEntry:
    return LoraEntry(id=row.id or 0, name=row.name, owner_id=row.user_id, trigger=row.trigger,
                     base_model=row.base_model, family=row.family, kind=row.kind, shared=row.shared,
                     library_name=row.file.removesuffix(".safetensors"))


class TrainingService:
    def __init__(self, sessions: Any, *, train_dir: Path) -> None:
        self.sessions = sessions
        self.train_dir = Path(train_dir)
        self._shown: dict[int, int] = {}  # job id -> the sample file's mtime last shown

    @property
    def space(self) -> Path:
        """The member LoRA space: the folder the engines' member library reads."""
        return self.train_dir / SPACE

    # ----- who may train where -----

    async def rules(self, guild_id: int) -> TrainingRules:
        async with self.sessions() as session:
            row = await repo.guild_rules(session, guild_id=guild_id)
        return TrainingRules(row.enabled, row.role_id, row.real_people) if row is not None else TrainingRules()

    async def set_rules(self, *, guild_id: int, rules: TrainingRules, by: int) -> None:
        async with self.sessions.begin() as session:
            await repo.set_guild_rules(session, guild_id=guild_id, enabled=rules.enabled, role_id=rules.role_id,
                                       real_people=rules.real_people, by=by)

    async def check_may_train(self, *, guild_id: int | None, role_ids: Collection[int], real_person: bool,
                              consent: bool) -> None:
        """Raise what stops this member training here, in words they can act on."""
        if guild_id is None:
            raise NotHere("Training runs on servers that allow it, not in direct messages.")
        rules = await self.rules(guild_id)
        if not rules.enabled:
            raise NotHere("Training LoRAs is off on this server; its admins can turn it on with /admin training.")
        if rules.role_id is not None and rules.role_id not in role_ids:
            raise NotHere(f"On this server only members with the <@&{rules.role_id}> role may train LoRAs.")
        if real_person:
            if not rules.real_people:
                raise NotHere("This server does not allow training on photos of real people.")
            if not consent:
                raise InvalidOption("Training on a real person needs their consent: confirm you have it "
                                    "(`consent: True`), or choose another subject.")

    async def screen_images(self, pngs: list[bytes], *, guild_id: int | None, moderation: Any) -> None:
        """Each training image through the NSFW image classifier under the server's policy, judged as
        for an ordinary channel whatever the channel: a LoRA outlives the channel it was made in."""
        checker = getattr(moderation, "images", None)
        if checker is None:
            return
        policy = await moderation.policy(guild_id)
        for index, png in enumerate(pngs, 1):
            verdict = await asyncio.to_thread(checker.check, png, nsfw_channel=False, policy=policy)
            if verdict.action is Action.BLOCK:
                raise Refused(f"Training image {index} was flagged by the NSFW image filter (score "
                              f"{verdict.score:.2f}, this server's limit {policy.image_threshold:.2f}); LoRAs are "
                              "not trained on such images here. Remove it and try again.", categories=["nsfw"])

    # ----- the job -----

    async def check_name_free(self, *, user_id: int, name: str) -> str:
        name = check_name(name)
        async with self.sessions() as session:
            if await repo.by_name(session, user_id=user_id, name=name) is not None:
                raise InvalidOption(f"You already have a LoRA named {name!r}; choose another name or delete it "
                                    "with /loras delete.")
        return name

    def job_params(self, settings: TrainingSettings, *, model_kind: str, user_id: int, name: str,
                   images: list[bytes], model_extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The parameters of a training job (a GenerationRequest with task "train", plus the name).

        width x height x steps make the quota price it like the generations it displaces (a default
        SD 1.5 subject run costs as much as about thirty 512 px images; bot/services/quotas.py).
        A registry entry may set ``train_resolution`` and ``train_sample_steps`` (the tiny test models do)."""
        if FAMILY_OF_KIND.get(model_kind) != settings.family:
            raise InvalidOption(f"{settings.base_model} cannot be trained on; choose an SD 1.5 or SDXL base model.")
        extra = model_extra or {}
        if "train_resolution" in extra:
            settings = settings.replace(resolution=int(extra["train_resolution"]))
        output = f"{user_id}/{secrets.token_hex(8)}.safetensors"
        return {
            "model": settings.base_model, "prompt": settings.trigger, "task": "train", "seed": settings.seed,
            "steps": settings.steps, "width": settings.resolution, "height": settings.resolution, "count": 1,
            "guidance": 0.0, "train_images": pack_images(images),
            "extra": {"training": {"kind": settings.kind, "trigger": settings.trigger, "rank": settings.rank,
                                   "learning_rate": settings.learning_rate, "name": name, "output": output,
                                   "family": settings.family, "images": len(images),
                                   "resolution": settings.resolution,
                                   **({"sample_steps": int(extra["train_sample_steps"])}
                                      if "train_sample_steps" in extra else {})}},
        }

    async def on_delivered(self, session: Any, job: Job) -> None:
        """The job service's on_delivered hook: a delivered training job's LoRA joins its owner's space
        in the delivery's own transaction."""
        self.finished(job.id or 0)
        await self.record(job, session=session)

    async def record(self, job: Job, *, session: Any = None) -> LoraEntry | None:
        """A finished training job's LoRA into its owner's space (in ``session`` when given)."""
        if job.command != TRAIN_COMMAND:
            return None
        training = (job.params.get("extra") or {}).get("training") or {}
        output = str(training.get("output", ""))
        if not await asyncio.to_thread((self.space / output).is_file):
            log.warning("training job %s finished without its LoRA file %s", job.id, output)
            return None
        family = str(training.get("family", "sd1"))
        row = MemberLora(user_id=job.user_id, guild_id=job.guild_id, name=str(training.get("name", output)),
                         file=output, base_model=job.model, family=family, kind=str(training.get("kind", "subject")),
                         trigger=str(training.get("trigger", "")), steps=int(job.params.get("steps", 0)),
                         job_id=job.id)
        if session is None:
            async with self.sessions.begin() as own:
                await self._add(own, row)
        else:
            await self._add(session, row)
        return _entry(row)

    async def _add(self, session: Any, row: MemberLora) -> None:
        if await repo.by_name(session, user_id=row.user_id, name=row.name) is not None:
            row.name = f"{row.name[:24]} #{row.job_id}"  # another LoRA took the name while this one trained
        await repo.add(session, row)

    async def new_sample(self, job: Job) -> bytes | None:
        """A running training job's latest sample image, once per new sample (None otherwise)."""
        if job.command != TRAIN_COMMAND or job.id is None:
            return None
        path = work_dir(self.train_dir, job.id) / SAMPLE

        def read() -> tuple[int, bytes] | None:
            try:
                stamp = path.stat().st_mtime_ns
                if self._shown.get(job.id) == stamp:  # type: ignore[arg-type]
                    return None
                return stamp, path.read_bytes()
            except OSError:
                return None

        found = await asyncio.to_thread(read)
        if found is None:
            return None
        self._shown[job.id] = found[0]
        return found[1]

    def finished(self, job_id: int) -> None:
        self._shown.pop(job_id, None)

    async def on_ended(self, session: Any, job: Job) -> None:
        """The job service's on_ended hook (failed or canceled): forget what was shown of it."""
        self.finished(job.id or 0)

    # ----- the member LoRA space -----

    async def usable(self, *, user_id: int, guild_id: int | None) -> list[LoraEntry]:
        async with self.sessions() as session:
            return [_entry(row) for row in await repo.usable(session, user_id=user_id, guild_id=guild_id)]

    async def export(self, *, user_id: int) -> dict[str, Any]:
        """The member's LoRAs for /export (their files stay on the bot's disk; /forget deletes them)."""
        async with self.sessions() as session:
            rows = await repo.owned(session, user_id=user_id)
        return {"loras": [{
            "id": row.id, "name": row.name, "trigger": row.trigger, "kind": row.kind, "base_model": row.base_model,
            "family": row.family, "steps": row.steps, "job_id": row.job_id, "shared": row.shared,
            "guild_id": None if row.guild_id is None else str(row.guild_id),
            "created_at": row.created_at.isoformat() if row.created_at else None,
        } for row in rows]}

    async def owned(self, *, user_id: int) -> list[LoraEntry]:
        async with self.sessions() as session:
            return [_entry(row) for row in await repo.owned(session, user_id=user_id)]

    async def search(self, *, user_id: int, guild_id: int | None, text: str, limit: int = 25) -> list[LoraEntry]:
        """For autocomplete: the member's own and the server's shared LoRAs whose name contains ``text``."""
        needle = text.strip().lower()
        found = [e for e in await self.usable(user_id=user_id, guild_id=guild_id) if needle in e.name.lower()]
        found.sort(key=lambda e: (e.owner_id != user_id, not e.name.lower().startswith(needle), e.name.lower()))
        return found[:limit]

    async def resolve(self, *, user_id: int, guild_id: int | None, lora_id: int) -> LoraEntry:
        """A LoRA this member may use here (their own, or shared on this server); NotYours otherwise."""
        async with self.sessions() as session:
            row = await repo.get(session, lora_id=lora_id)
        if row is None or not (row.user_id == user_id or (row.shared and guild_id is not None
                                                             and row.guild_id == guild_id)):
            raise NotYours("That LoRA is not yours and not shared on this server.")
        return _entry(row)

    async def chosen(self, *, user_id: int, guild_id: int | None, value: str | None) -> LoraEntry | None:
        """/imagine's ``lora`` value when it names a member LoRA: an autocomplete choice
        (``member:<id>``) or a name typed in full (the member's own first); None for anything else."""
        if not value:
            return None
        if value.startswith(CHOICE_PREFIX) and value.removeprefix(CHOICE_PREFIX).isdigit():
            return await self.resolve(user_id=user_id, guild_id=guild_id, lora_id=int(value.removeprefix(CHOICE_PREFIX)))
        typed = " ".join(value.split()).lower()
        matches = [e for e in await self.usable(user_id=user_id, guild_id=guild_id) if e.name.lower() == typed]
        matches.sort(key=lambda e: e.owner_id != user_id)
        return matches[0] if matches else None

    def apply(self, params: dict[str, Any], entry: LoraEntry, *, weight: float | None, model_kind: str,
              model: str) -> dict[str, Any]:
        """A generation's parameters with the member LoRA added at ``weight`` (its family checked here,
        before the job is queued; the engine checks the file again)."""
        family = FAMILY_OF_KIND.get("sdxl" if model_kind.startswith("sdxl") else model_kind)
        if family is None:
            raise InvalidOption(f"{model} does not take LoRAs; choose an SD 1.5 or SDXL model.")
        if family != entry.family:
            names = {"sd1": "SD 1.5", "sdxl": "SDXL"}
            raise InvalidOption(f"LoRA {entry.name!r} was trained on {names[entry.family]} ({entry.base_model}) and "
                                f"{model} is {names[family]}; choose an {names[entry.family]} model.")
        value = DEFAULT_LORA_WEIGHT if weight is None else float(weight)
        if not MIN_LORA_WEIGHT <= value <= MAX_LORA_WEIGHT:
            raise InvalidOption(f"LoRA weight must be {MIN_LORA_WEIGHT:g}-{MAX_LORA_WEIGHT:g}; you asked for {value:g}")
        return {**params, "loras": [*params.get("loras", []), [MEMBER_PREFIX + entry.library_name, value]]}

    async def _own(self, session: Any, *, user_id: int, name: str) -> MemberLora:
        row = await repo.by_name(session, user_id=user_id, name=name)
        if row is None:
            raise InvalidOption(f"You have no LoRA named {name!r}; /loras list shows yours.")
        return row

    async def rename(self, *, user_id: int, name: str, new_name: str) -> None:
        new_name = check_name(new_name)
        async with self.sessions.begin() as session:
            row = await self._own(session, user_id=user_id, name=name)
            if await repo.by_name(session, user_id=user_id, name=new_name) is not None:
                raise InvalidOption(f"You already have a LoRA named {new_name!r}.")
            await repo.rename(session, lora_id=row.id, name=new_name)  # type: ignore[arg-type]

    async def share(self, *, actor_id: int, guild_id: int | None, lora_id: int, shared: bool,
                    moderator: bool = False) -> LoraEntry:
        """Share (or unshare) a LoRA on the server it was trained on: its owner, or a moderator there."""
        async with self.sessions.begin() as session:
            row = await repo.get(session, lora_id=lora_id)
            if row is None:
                raise InvalidOption("No such LoRA.")
            if guild_id is None or row.guild_id != guild_id:
                raise NotHere("A LoRA is shared on the server it was trained on, from that server.")
            if row.user_id != actor_id and not moderator:
                raise NotYours("Only its owner or a moderator can share or unshare a LoRA.")
            await repo.set_shared(session, lora_id=lora_id, shared=shared, by=actor_id)
            row.shared = shared
        return _entry(row)

    async def delete(self, *, user_id: int, name: str) -> None:
        async with self.sessions.begin() as session:
            row = await self._own(session, user_id=user_id, name=name)
            await repo.remove(session, lora_id=row.id)  # type: ignore[arg-type]
            file = row.file
        await asyncio.to_thread(self._unlink, file)

    async def forget(self, *, user_id: int) -> int:
        """/forget: every LoRA of the member, rows and files (also files of jobs never recorded)."""
        async with self.sessions.begin() as session:
            files = await repo.remove_all(session, user_id=user_id)
        await asyncio.to_thread(shutil.rmtree, self.space / str(int(user_id)), True)
        return len(files)

    def _unlink(self, file: str) -> None:
        path = (self.space / file).resolve()
        if path.is_relative_to(self.space.resolve()):
            path.unlink(missing_ok=True)
