"""Moderation records and bans. A guild's policy and log channel live in GuildSettings (db/models.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Float, Index, String, Text
from sqlmodel import Field, SQLModel

from db.models import utcnow


class ModerationCase(SQLModel, table=True):
    """Every decision that was not a plain allow, and every moderator action."""

    __tablename__ = "moderation_cases"
    # Review buttons name cases by id, and retention deletes old cases: ids are never reused.
    __table_args__ = (Index("ix_cases_guild_id", "guild_id", "id"), Index("ix_cases_user", "user_id"),
                      {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    guild_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    channel_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    job_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # warn | block (prompt or image verdicts), ban | unban | purge (moderator actions)
    action: str = Field(sa_column=Column(String(16), nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    layer: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    score: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    prompt: str = Field(default="", sa_column=Column(Text, nullable=False))
    negative: str = Field(default="", sa_column=Column(Text, nullable=False))
    normalized: str = Field(default="", sa_column=Column(Text, nullable=False))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    reported: bool = False
    review_requested: bool = False
    moderator_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Ban(SQLModel, table=True):
    """A member barred from Atelier in one guild, until a time or for good (until is None)."""

    __tablename__ = "bans"

    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    moderator_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
