"""One settings object, read from the environment (and an optional `.env`), validated at start-up.

A missing or malformed setting stops start-up with one line naming it: admins configure the bot
through environment variables and should never have to read a traceback to find a typo.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from inference.limits import (
    DEFAULT_LORA_RANK,
    DEFAULT_LORA_SLOTS,
    MAX_LORA_RANK,
    MAX_LORA_SLOTS,
    MIN_LORA_RANK,
)

ENV_NAMES = {
    "discord_token": "DISCORD_TOKEN",
    "database_url": "ATELIER_DATABASE_URL",
    "models": "ATELIER_MODELS",
    "models_dir": "ATELIER_MODELS_DIR",
    "vram_budget": "ATELIER_VRAM_BUDGET",
    "ram_budget": "ATELIER_RAM_BUDGET",
    "preload": "ATELIER_PRELOAD",
    "devices": "ATELIER_DEVICES",
    "sync_guild": "ATELIER_SYNC_GUILD",
    "log_level": "ATELIER_LOG_LEVEL",
    "progress_interval": "ATELIER_PROGRESS_INTERVAL",
    "owner_ids": "ATELIER_OWNER_IDS",
    "dm": "ATELIER_DM",
    "cooldown": "ATELIER_COOLDOWN",
    "max_queued_per_member": "ATELIER_MAX_QUEUED_PER_MEMBER",
    "max_queue": "ATELIER_MAX_QUEUE",
    "show_per_minute": "ATELIER_SHOW_PER_MINUTE",
    "export_per_minute": "ATELIER_EXPORT_PER_MINUTE",
    "attachments_per_minute": "ATELIER_ATTACHMENTS_PER_MINUTE",
    "moderation_semantic": "ATELIER_MODERATION_SEMANTIC",
    "nsfw_image_check": "ATELIER_NSFW_IMAGE_CHECK",
    "default_daily_credits": "ATELIER_DEFAULT_DAILY_CREDITS",
    "retention_days": "ATELIER_RETENTION_DAYS",
    "redis_url": "ATELIER_REDIS_URL",
    "redis_queue": "ATELIER_REDIS_QUEUE",
    "metrics_port": "ATELIER_METRICS_PORT",
    "metrics_host": "ATELIER_METRICS_HOST",
    "lora_dir": "ATELIER_LORA_DIR",
    "lora_cache": "ATELIER_LORA_CACHE",
    "lora_rank": "ATELIER_LORA_RANK",
    "lora_slots": "ATELIER_LORA_SLOTS",
    "embeddings_dir": "ATELIER_EMBEDDINGS_DIR",
    "wildcards_dir": "ATELIER_WILDCARDS_DIR",
    "train_devices": "ATELIER_TRAIN_DEVICES",
    "data_dir": "ATELIER_DATA_DIR",
    "compile_mode": "ATELIER_COMPILE",
    "shard_count": "ATELIER_SHARD_COUNT",
    "shard_ids": "ATELIER_SHARD_IDS",
    "batch_max": "ATELIER_BATCH_MAX",
    "batch_window_ms": "ATELIER_BATCH_WINDOW_MS",
    "job_timeout": "ATELIER_JOB_TIMEOUT",
    "sweep_seconds": "ATELIER_SWEEP_SECONDS",
}


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ATELIER_", env_file=".env", extra="ignore", populate_by_name=True
    )

    discord_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DISCORD_TOKEN", "ATELIER_DISCORD_TOKEN")
    )
    # A secret like the token: a PostgreSQL URL usually holds a password (repr(Settings) hides it).
    database_url: SecretStr = SecretStr("sqlite+aiosqlite:///atelier.db")
    models: Path | None = None
    # A folder of single-file checkpoints (.safetensors in the A1111/Civitai layout, subfolders too):
    # each one is served as a model named after its file, its family read from its tensor names.
    models_dir: Path | None = None
    # Bytes of models each device may hold (e.g. `60GB`); unset: a GPU's memory less headroom. Models
    # beyond it wait in host memory, up to ATELIER_RAM_BUDGET (unset: half the host's memory).
    vram_budget: int | None = None
    ram_budget: int | None = None
    # Models loaded before the bot goes online, comma-separated; unset: the registry's default; `none`: none.
    preload: str | None = None
    devices: str | None = None
    sync_guild: int | None = None
    log_level: str = "INFO"
    # Seconds between two progress edits of one message (Discord rate-limits edits; peers use 3-5 s).
    progress_interval: float = Field(default=1.5, ge=0.0)
    owner_ids: str = ""
    # Whether members may create images in direct messages with the bot (off | allowed). A DM has
    # no server, so no server's moderators, bans or allowances apply there; only global bans do.
    dm: str = "off"
    # Seconds a member waits between two commands, buttons or reactions that make the bot work or
    # post (0: off); read-only commands (/quota, /queue, /history, ...) are not counted.
    cooldown: float = Field(default=2.0, ge=0.0, le=3600.0)
    # Jobs one member may have queued or running, and jobs the whole queue may hold.
    max_queued_per_member: int = Field(default=10, ge=1, le=10_000)
    max_queue: int = Field(default=500, ge=1, le=1_000_000)
    # Per member and minute: /show reposts, /export files, and attachments fetched from Discord (0: no limit).
    show_per_minute: int = Field(default=6, ge=0)
    export_per_minute: int = Field(default=2, ge=0)
    attachments_per_minute: int = Field(default=10, ge=0)
    # The MiniLM paraphrase/name layer (~20 ms a prompt, ~500 MB); off leaves the rule layers only.
    moderation_semantic: bool = True
    # The opennsfw image classifier on every generated image.
    nsfw_image_check: bool = True
    # Credits a member may spend a day where a server set no allowance (-1: unlimited).
    default_daily_credits: int = Field(default=250, ge=-1)
    # Days of history kept where a server set no retention (0: forever).
    retention_days: int = Field(default=90, ge=0)
    # Redis of the remote GPU workers (`atelier worker`); unset runs inference in this process.
    # A secret: it usually holds a password, and is never logged.
    redis_url: SecretStr | None = None
    # The saq queue name shared with the workers' --queue.
    redis_queue: str = Field(default="atelier", min_length=1)
    # Port of the Prometheus endpoint (/metrics); unset: no endpoint.
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # The address it listens on: this machine only by default (the figures show the bot's load and
    # its servers' activity); 0.0.0.0 for a scraper on another host, behind a firewall.
    metrics_host: str = Field(default="127.0.0.1", min_length=1)
    # A folder of LoRA .safetensors files members may pick in /imagine (subfolders too); unset: no
    # LoRAs. In-process workers read the same variable; remote workers read their own machine's.
    lora_dir: Path | None = None
    # LoRAs kept loaded per model on each device (least recently used dropped); 0: load per job.
    lora_cache: int = Field(default=8, ge=0, le=64)
    # LoRA slots of compiled UNets (ATELIER_COMPILE regional or max, with ATELIER_LORA_DIR;
    # inference/hotswap.py): the largest LoRA rank a slot takes (a LoRA above it loads as its own
    # adapter and the blocks recompile for its jobs), and slots per UNet (0: none, every LoRA that
    # way). Each slot costs memory while its model is loaded (rank 64: ~55 MB on SD 1.5, ~350 MB on SDXL).
    lora_rank: int = Field(default=DEFAULT_LORA_RANK, ge=MIN_LORA_RANK, le=MAX_LORA_RANK)
    lora_slots: int = Field(default=DEFAULT_LORA_SLOTS, ge=0, le=MAX_LORA_SLOTS)
    # A folder of textual-inversion embeddings (.safetensors/.pt) members use by name in prompts
    # and negatives (e.g. a negative embedding); unset: none. Workers read it as for LoRAs.
    embeddings_dir: Path | None = None
    # A folder of wildcard files (colors.txt -> __colors__ in a prompt); unset: no wildcards.
    wildcards_dir: Path | None = None
    # Devices of this process that run LoRA training jobs (/train), comma-separated like
    # ATELIER_DEVICES; unset: none (`atelier worker --train` sets its own devices). Other devices never
    # claim a training job.
    train_devices: str | None = None
    # The bot's data folder: members' trained LoRAs (training/loras/<member>/) and training checkpoints.
    data_dir: Path = Path("data")
    # How pipelines are compiled (inference/compile.py): off, regional or max; unset: regional on
    # CUDA devices, off on CPU.
    compile_mode: Literal["off", "regional", "max"] | None = Field(
        default=None, validation_alias=AliasChoices("compile_mode", "ATELIER_COMPILE"))
    # Discord shards in all (Discord requires one per 2,500 guilds); unset: Discord's recommendation
    # (GET /gateway/bot). With ATELIER_SHARD_IDS, several processes split the shards between them.
    shard_count: int | None = Field(default=None, ge=1)
    # The shards this process runs, comma-separated (e.g. `0,1`); unset: all of them.
    shard_ids: str | None = None
    # Dynamic batching of in-process workers: the most images one pipeline call carries for other
    # members' compatible queued jobs (1: off), and how long a worker waits for partners while
    # commands are arriving (never when the bot is quiet). See inference/batching.py.
    batch_max: int = Field(default=4, ge=1, le=16)
    batch_window_ms: int = Field(default=50, ge=0, le=100)
    # The watchdog: seconds one pipeline run may take before its job fails and the device starts
    # afresh (0: by the model's kind, 10 minutes for images, 15 for upscales, 30 for videos).
    job_timeout: float = Field(default=0.0, ge=0.0)
    # How often each process marks its jobs alive, retries deliveries Discord refused and the
    # recording of results a database error interrupted, and re-queues jobs left stuck.
    sweep_seconds: float = Field(default=20.0, gt=0.0, le=300.0)
    # uvloop where it is installed (Linux, macOS) runs the socket work a burst of interactions is
    # made of faster than asyncio's own loop; false keeps asyncio's.
    uvloop: bool = True

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @field_validator("dm", mode="before")
    @classmethod
    def _dm(cls, value: object) -> object:
        value = str(value).strip().lower() if value is not None else "off"
        if value not in ("off", "allowed"):
            raise ValueError("must be off or allowed")
        return value

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        if "://" not in value.get_secret_value():
            raise ValueError("must be an SQLAlchemy URL such as sqlite+aiosqlite:///atelier.db")  # never echo it
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")  # never echo it: it holds a password
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("models_dir", mode="before")
    @classmethod
    def _models_dir(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not Path(str(value)).expanduser().is_dir():
            raise ValueError(f"no such folder: {value}")
        return Path(str(value)).expanduser()

    @field_validator("vram_budget", "ram_budget", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        return parse_size(value)

    @field_validator("lora_dir", "embeddings_dir", "wildcards_dir", mode="before")
    @classmethod
    def _lora_dir(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not Path(str(value)).is_dir():
            raise ValueError(f"no such folder: {value}")
        return value

    @field_validator("shard_count", mode="before")
    @classmethod
    def _shard_count(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ids(cls, value: object, info: ValidationInfo) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        parts = [p.strip() for p in str(value).split(",")]
        if not all(p.isdigit() for p in parts):
            raise ValueError("must be comma-separated shard numbers, e.g. 0,1")
        count = info.data.get("shard_count")
        if count is None:
            raise ValueError("needs ATELIER_SHARD_COUNT (the total number of shards) to be set too")
        ids = [int(p) for p in parts]
        if len(set(ids)) != len(ids):
            raise ValueError("names a shard twice")
        if max(ids) >= count:
            raise ValueError(f"shard ids run from 0 to {count - 1} with ATELIER_SHARD_COUNT={count}")
        return ",".join(map(str, ids))

    @field_validator("devices")
    @classmethod
    def _devices(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for dev in value.split(","):
            dev = dev.strip()
            if not (dev == "cpu" or dev == "mps" or dev == "cuda" or (dev.startswith("cuda:") and dev[5:].isdigit())):
                raise ValueError(f"unknown device {dev!r} (use cpu, mps or cuda:N, comma-separated)")
        return value

    @field_validator("owner_ids")
    @classmethod
    def _owners(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            if not part.isdigit():
                raise ValueError("must be comma-separated Discord user ids")
        return value

    @field_validator("train_devices")
    @classmethod
    def _train_devices(cls, value: str | None) -> str | None:
        """Like ATELIER_DEVICES, plus ``remote``: the bot's Redis-fed workers (each run with --train)."""
        if value is None or not value.strip():
            return None
        local = ",".join(d for d in value.split(",") if d.strip() != "remote")
        if local.strip():
            cls._devices(local)
        return value

    @property
    def train_device_list(self) -> list[str]:
        """The devices allowed to train (none unless ATELIER_TRAIN_DEVICES names some)."""
        return [d.strip() for d in (self.train_devices or "").split(",") if d.strip()]

    @property
    def train_dir(self) -> Path:
        """Where training keeps its checkpoints and the member LoRA space (``<data_dir>/training``)."""
        return self.data_dir / "training"

    @cached_property
    def device_list(self) -> list[str] | None:
        """Explicit devices, or None meaning 'every CUDA device, else cpu' (resolved by inference)."""
        if self.devices is None:
            return None
        return [d.strip() for d in self.devices.split(",") if d.strip()]

    def preload_models(self, default: str) -> list[str]:
        """The models to load at start-up: ATELIER_PRELOAD's names, else ``default`` (the registry's)."""
        if self.preload is None or not self.preload.strip():
            return [default]
        if self.preload.strip().lower() == "none":
            return []
        return list(dict.fromkeys(p.strip() for p in self.preload.split(",") if p.strip()))

    @cached_property
    def shard_id_list(self) -> list[int] | None:
        """The shards this process runs, or None meaning all of them."""
        return None if self.shard_ids is None else [int(p) for p in self.shard_ids.split(",")]

    @property
    def instance(self) -> str:
        """This process's name among the bot processes sharing one database: the same across its
        restarts (so it recovers its own interrupted jobs at once) and different from the others'
        (each runs different shards). Job rows carry it in their worker's name."""
        if self.shard_ids is None:
            return "main"
        name = "shards-" + "-".join(str(i) for i in self.shard_id_list or [])
        if len(name) > 40:  # job.worker holds 64 characters with the device name after it
            ids = self.shard_id_list or []
            name = f"shards-{ids[0]}-{ids[-1]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
        return name

    @property
    def runs_shard_zero(self) -> bool:
        """Shard 0's process is the one that syncs commands (and gets Discord's DMs)."""
        return self.shard_id_list is None or 0 in self.shard_id_list

    @property
    def dm_allowed(self) -> bool:
        return self.dm == "allowed"

    @cached_property
    def owner_id_set(self) -> set[int]:
        return {int(p) for p in self.owner_ids.split(",") if p.strip()}

    @property
    def database(self) -> str:
        """The database URL itself, for the engine only (never log it; see redacted())."""
        return self.database_url.get_secret_value()

    def require_redis(self) -> str:
        """The Redis URL `atelier worker` serves; from the environment only, never argv (which every
        user of the machine can read in the process list)."""
        if self.redis_url is None:
            raise SettingsError("ATELIER_REDIS_URL is not set: export the bot's Redis URL (e.g. "
                                "rediss://:PASSWORD@redis.example:6380/0) before `atelier worker`")
        return self.redis_url.get_secret_value()

    def require_token(self) -> str:
        if self.discord_token is None or not self.discord_token.get_secret_value().strip():
            raise SettingsError("DISCORD_TOKEN is not set: create a bot at https://discord.com/developers/applications and export its token")
        return self.discord_token.get_secret_value().strip()


_UNITS = {"": None, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(value: object) -> int | None:
    """``24GB``, ``512 MiB``, ``0``: a memory size in bytes (None when unset)."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value  # type: ignore[return-value]
    text = str(value).strip().lower().replace(" ", "")
    if not text:
        return None
    number = text.rstrip("kmgtib")
    unit = text[len(number):]
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in _UNITS or amount < 0 or (_UNITS[unit] is None and amount != 0):
        raise ValueError(f"must be a size such as 24GB or 512MiB, not {value!r}")
    return int(amount * (_UNITS[unit] or 1))


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning validation errors into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = str(err["loc"][0]) if err["loc"] else "?"
        name = ENV_NAMES.get(field, field.upper() if field.isupper() else f"ATELIER_{field.upper()}")
        raise SettingsError(f"Invalid setting {name}: {err['msg']}") from None
