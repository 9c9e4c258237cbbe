"""The Bot subclass: the only place that wires concrete objects together.

Start-up order: database (migrated) -> model registry -> job service -> delivery -> moderation,
metrics and accounts, and the job service's hooks (in the order they run) -> inference pool ->
cogs -> command sync (only when the commands changed, and only in the process that runs
shard 0) -> recovery of interrupted jobs.

The cogs reach what they share through the bot: `roles` (members' roles, which the account cog
feeds and the allowances' role tiers read), `mod_channel` (where the moderation service reports
cases and the review button posts) and `preferences` (members' and servers' defaults: /settings,
/admin defaults, remix).

The bot is an AutoShardedBot: one process runs every shard (Discord's recommended count) unless
ATELIER_SHARD_COUNT / ATELIER_SHARD_IDS split them over several processes sharing one database.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import discord
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.engines import engine_factory, load_registry
from bot.metrics import Metrics
from bot.params.animate import stills_for_moderation
from bot.services.accounts import AccountService
from bot.services.cases import Cases
from bot.services.derived import DerivedJobs
from bot.services.hooks import Hooks
from bot.services.jobs import JobService
from bot.services.moderation import ModerationService, Reporter
from bot.services.preferences import Preferences
from bot.services.rate_limits import Limits
from bot.services.styles import StyleService
from bot.services.training import TrainingService
from bot.settings import Settings
from bot.ui.buttons import JobButton
from bot.ui.delivery import DiscordDelivery
from bot.ui.reports import ModChannel
from bot.ui.roles import RoleMemory
from bot.ui.tree import AtelierTree
from db import migrate
from db.engine import create_engine, create_sessionmaker
from db.models import Job
from db.repositories import users as users_repo
from inference.models import ModelRegistry
from inference.pool import InferencePool, default_devices
from inference.remote import RemotePool
from inference.telemetry import gpu_memory

log = logging.getLogger(__name__)

def extensions(package: str = "cogs") -> list[str]:
    """Every module in cogs/ that defines `setup(bot)`: adding a feature is adding a file.

    Found by file name, not by importing the package: core never imports a cog (load_extension does).
    """
    import importlib.util
    import pkgutil

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the {package} package is missing")
    found = []
    for info in pkgutil.iter_modules(spec.submodule_search_locations):
        path = Path(info.module_finder.path) / f"{info.name}.py"  # type: ignore[union-attr]
        if path.is_file() and "async def setup(" in path.read_text(encoding="utf-8"):
            found.append(f"{package}.{info.name}")
    return sorted(found)


def intents() -> discord.Intents:
    # Slash commands need no privileged intents; reactions need the reaction intents.
    value = discord.Intents.none()
    value.guilds = True
    value.guild_reactions = True
    value.dm_reactions = True
    return value


# Discord accepts one IDENTIFY per 5 s per rate-limit bucket (max_concurrency 1 for most bots):
# https://discord.com/developers/docs/events/gateway#rate-limiting
IDENTIFY_INTERVAL = 5.0


class Atelier(commands.AutoShardedBot):
    def __init__(self, settings: Settings, *, engine_factory: Callable[[str], Any] | None = None,
                 identify_interval: float = IDENTIFY_INTERVAL, **options: Any) -> None:
        options.setdefault("shard_count", settings.shard_count)
        options.setdefault("shard_ids", settings.shard_id_list)
        super().__init__(command_prefix=commands.when_mentioned, intents=intents(), tree_cls=AtelierTree,
                         help_command=None, **options)
        self.settings = settings
        # Seconds between this process's IDENTIFYs after its first (tests pass 0: the fake has no limit).
        self.identify_interval = identify_interval
        self._engine_factory = engine_factory
        self.db: AsyncEngine | None = None
        self.read_db: AsyncEngine | None = None
        self.service: JobService
        self.derived: DerivedJobs
        self.styles: StyleService
        self.cases: Cases
        self.pool: InferencePool | RemotePool
        self.metrics: Metrics | None = None
        self.registry: ModelRegistry
        self.synced: bool = False
        self.moderation: ModerationService
        self.accounts: AccountService
        self.preferences: Preferences
        self.training: TrainingService
        self.limits = Limits()
        self.roles = RoleMemory()
        self.mod_channel: ModChannel

    async def setup_hook(self) -> None:
        self.db = create_engine(self.settings.database)
        await migrate.upgrade(self.db)
        sessions = create_sessionmaker(self.db)
        self.registry = load_registry(self.settings)
        # SQLite: lookups get their own connection pool, so they never queue for a connection behind
        # writers waiting for the write lock (checks made before acknowledging must stay fast).
        if self.db.dialect.name == "sqlite":
            self.read_db = create_engine(self.settings.database)
        reads = create_sessionmaker(self.read_db or self.db, readonly=True)
        self.service = JobService(sessions, self.registry, progress_interval=self.settings.progress_interval,
                                  reads=reads, owner=self.settings.instance, dm_allowed=self.settings.dm_allowed,
                                  max_queued_per_user=self.settings.max_queued_per_member,
                                  max_queue=self.settings.max_queue, sweep_seconds=self.settings.sweep_seconds)
        self.limits = Limits(cooldown=self.settings.cooldown, per_minute={
            "show": self.settings.show_per_minute, "export": self.settings.export_per_minute,
            "attachment": self.settings.attachments_per_minute})
        self.service.delivery = DiscordDelivery(self)
        # Prompt folders of the owner: a reroll resolves its template's wildcards again.
        self.service.prompt_folders = (self.settings.wildcards_dir, self.settings.embeddings_dir)
        self.derived = DerivedJobs(self.service)
        self.styles = StyleService(sessions, reads)
        self.cases = Cases(sessions)
        self.mod_channel = ModChannel(self, self.cases)
        self.service.acks = self.tree.acks  # type: ignore[attr-defined]
        self.moderation = build_moderation(self.settings, sessions, reads, reporter=self.mod_channel.report)
        self.service.image_check = self.check_result
        # Load the moderation models off the loop now, not on the first member's prompt.
        self._warmup = asyncio.create_task(self.moderation.warmup())
        self.metrics = Metrics(gpu_memory=gpu_memory)
        self.accounts = AccountService(self.service, default_daily=self.settings.default_daily_credits,
                                       default_retention_days=self.settings.retention_days, roles_of=self.roles)
        # Members' and servers' defaults (/settings, /admin defaults), read by the commands before they check options.
        self.preferences = Preferences(sessions, self.registry, reads=reads, server_styles=self.styles.for_guild)
        # /train and the member LoRA space; only ATELIER_TRAIN_DEVICES claim training jobs.
        self.training = TrainingService(sessions, train_dir=self.settings.train_dir)
        self.service.train_devices = frozenset(self.settings.train_device_list)
        self.service.sample_of = self.training.new_sample
        self.accounts.on_forget.append(self.training.forget)
        self.accounts.on_export.append(self.training.export)
        # Each point runs its hooks in this order: a prompt is judged before its credits are reserved.
        self.service.hooks = Hooks(
            before_acknowledge=[self.accounts.before_acknowledge],
            screen=[self.moderation.screen, self.accounts.screen],
            before_submit=[self.moderation.before_submit, self.accounts.before_submit],
            on_delivered=[self.metrics.on_delivered, self.accounts.on_delivered, self.training.on_delivered],
            on_ended=[self.metrics.on_ended, self.accounts.on_ended, self.training.on_ended],
        )
        source = self.metrics.source(self.service)
        if self.settings.redis_url is not None:  # GPU workers elsewhere (`atelier worker`), fed over Redis
            self.pool = RemotePool(source, self.settings.redis_url.get_secret_value(),
                                   queue_name=self.settings.redis_queue, name=f"{self.settings.instance}/remote",
                                   job_timeout=self.settings.job_timeout or None)
        else:  # the embedded default: this process's devices
            devices = self.settings.device_list or await asyncio.to_thread(default_devices)
            factory = self._engine_factory or engine_factory(self.settings, self.registry)
            self.pool = InferencePool(source, factory, devices, batch_window=self.settings.batch_window_ms / 1000,
                                      owner=self.settings.instance, run_timeout=self.settings.job_timeout or None)
            self.service.resident = self.pool.resident_models
            self.service.demand = self.pool.note_demand
        self.service.pool = self.pool
        self.add_dynamic_items(JobButton)  # result buttons; their actions' handlers come with the cogs
        for extension in extensions():
            await self.load_extension(extension)
        if self.settings.runs_shard_zero:
            await self.sync_commands()
        else:  # two processes syncing at once (or two versions during a rolling restart) would fight
            log.info("commands are synced by the process that runs shard 0; not syncing here")
        # Recover before any worker claims: a fresh claim would otherwise look interrupted and run twice.
        await self.service.recover()
        await self.preload()
        await self.pool.start()
        self._heartbeat = asyncio.create_task(self.service.heartbeat_forever(), name="atelier-job-heartbeat")
        self.metrics.start(reads, port=self.settings.metrics_port, addr=self.settings.metrics_host)

    async def check_result(self, job: Job, files: list[bytes]) -> str | None:
        """The image check of a finished job's files; a video is scored by its first, middle and last
        frames, since the checker decodes stills."""
        stills = await asyncio.to_thread(stills_for_moderation, files)
        return await self.moderation.check_images(job, stills, nsfw_channel=bool(job.params.get("nsfw_channel")))

    async def preload(self) -> None:
        """Load ATELIER_PRELOAD's models (default: the registry's default) on every device before the bot
        goes online, so the first member does not wait for a load. A model that cannot load is logged
        and left to load (and fail with its reason) on first use: the bot still starts."""
        names = self.settings.preload_models(self.registry.default_name)
        if not names or not isinstance(self.pool, InferencePool):
            return
        started = asyncio.get_running_loop().time()
        try:
            await self.pool.warmup(names)
        except Exception as exc:
            log.error("could not preload %s: %s", ", ".join(names), str(exc).splitlines()[0] if str(exc) else exc)
            return
        log.info("preloaded %s on %s in %.1f s", ", ".join(names), ", ".join(w.device for w in self.pool.workers),
                 asyncio.get_running_loop().time() - started)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every IDENTIFY but the first; the interval is adjustable."""
        if not initial and self.identify_interval > 0:
            await asyncio.sleep(self.identify_interval)

    async def on_shard_ready(self, shard_id: int) -> None:
        log.info("shard %d of %s ready", shard_id, self.shard_count)

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync the command tree only when it changed since the last sync (hash kept in the database)."""
        guild = discord.Object(self.settings.sync_guild) if self.settings.sync_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        key = f"command_hash:{self.settings.sync_guild or 'global'}"
        async with self.service.sessions.begin() as session:
            if not force and await users_repo.get_meta(session, key=key) == digest:
                log.info("commands unchanged; not syncing")
                return False
            await self.tree.sync(guild=guild)
            await users_repo.set_meta(session, key=key, value=digest)
        self.synced = True
        log.info("synced %d commands %s", len(payload), f"to guild {guild.id}" if guild else "globally")
        return True

    async def close(self) -> None:
        heartbeat = getattr(self, "_heartbeat", None)
        if heartbeat is not None:
            heartbeat.cancel()
        pool = getattr(self, "pool", None)
        if pool is not None:
            await pool.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        service = getattr(self, "service", None)
        if service is not None:
            await service.drain(timeout=5)
        await super().close()
        if self.db is not None:
            await self.db.dispose()
        if self.read_db is not None:
            await self.read_db.dispose()


def build_moderation(settings: Settings, sessions: Any, reads: Any = None, *,
                     reporter: Reporter | None = None) -> ModerationService:
    from moderation import Moderator, default_moderator
    from moderation.images import ImageChecker

    moderator = default_moderator() if settings.moderation_semantic else Moderator(semantic=False)
    images = ImageChecker() if settings.nsfw_image_check else None
    return ModerationService(sessions, moderator=moderator, images=images, reads=reads, reporter=reporter)
