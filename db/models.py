"""Table models. Input/output schemas live with their callers; these are only what is stored.

Discord snowflakes exceed 32 bits, so every Discord id column is a BIGINT (PostgreSQL would
otherwise overflow). Timestamps are timezone-aware UTC.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, LargeBinary, String, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(**kw: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kw))


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    completed = "completed"
    failed = "failed"
    canceled = "canceled"


ACTIVE_STATUSES = (JobStatus.queued, JobStatus.running)


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    name: str = Field(default="", sa_column=Column(String(100), nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class GuildSettings(SQLModel, table=True):
    __tablename__ = "guild_settings"

    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Moderation policy as moderation.Policy.to_dict(); None means the defaults.
    policy: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    mod_channel_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Job(SQLModel, table=True):
    """One unit of GPU work and everything needed to deliver it, also after a restart."""

    __tablename__ = "jobs"
    # Ids are never reused (SQLite AUTOINCREMENT; PostgreSQL's sequence never goes back): buttons and
    # messages name jobs by id, and a deleted job's id handed to a new job would point them at it.
    __table_args__ = (
        Index("ix_jobs_status_id", "status", "id"),
        Index("ix_jobs_user_status", "user_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=JobStatus.queued, sa_column=Column(String(16), nullable=False, index=False))
    command: str = Field(sa_column=Column(String(32), nullable=False))
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    guild_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    channel_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Set when the job came from an interaction: lets any process edit the original response.
    application_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    interaction_token: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    interaction_at: datetime | None = _ts(nullable=True)
    upload_limit: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # The message showing progress, then the result (found again from reactions and buttons).
    message_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    parent_job_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    model: str = Field(sa_column=Column(String(100), nullable=False))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The full GenerationRequest (minus job_id) and display extras.
    params: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    started_at: datetime | None = _ts(nullable=True)
    finished_at: datetime | None = _ts(nullable=True)
    run_seconds: float | None = None
    progress_step: int = 0
    progress_total: int = 0
    attempts: int = 0
    # "<process>/<device>#n" of whoever runs it (see bot.settings.Settings.instance), and when that
    # process last confirmed it still does: start-up recovery and the sweep use both.
    worker: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    heartbeat_at: datetime | None = _ts(nullable=True)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    cancel_requested: bool = False
    delivered: bool = False
    notice: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Output(SQLModel, table=True):
    """A produced file. Kept in the database so an undelivered result survives a restart."""

    __tablename__ = "outputs"

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(sa_column=Column(BigInteger, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True))
    # 0..n-1 for single images, -1 for the grid of a multi-image job.
    index: int = 0
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))
    width: int
    height: int
    mime: str = Field(default="image/png", sa_column=Column(String(32), nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class JobInput(SQLModel, table=True):
    """An image a job starts from (an upload, a result to vary, a pose skeleton), stored apart from
    the job's parameters: the scheduler, queue positions and /queue read job rows many times a
    second and must not carry megabytes of image with them. The job's params name it by id
    (``params["inputs"] = {"init_image": id}``); the row goes with its job (ON DELETE CASCADE)."""

    __tablename__ = "job_inputs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(sa_column=Column(BigInteger, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False, index=True))
    # The GenerationRequest field it fills: init_image or control_image.
    name: str = Field(sa_column=Column(String(32), nullable=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Meta(SQLModel, table=True):
    """Small key/value facts about this deployment (e.g. the hash of the last command sync)."""

    __tablename__ = "meta"

    key: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))


def load_all_tables() -> None:
    """Import every table module (db/models.py and db/models_*.py) so SQLModel.metadata knows them all."""
    import importlib
    import pkgutil
    from pathlib import Path

    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith("models_"):
            importlib.import_module(f"db.{info.name}")
