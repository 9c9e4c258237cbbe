"""Tables for /settings: a member's defaults and a server's defaults.

A member's defaults are per user, across every server and DMs (like Midjourney's /settings): they
are a member's taste, and one bot serves the same models everywhere. A server's defaults
(`/admin defaults`) are per guild and sit under every member's. A NULL column means "not set": the
next layer down decides (member -> server -> the model registry).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, String, Text
from sqlmodel import Field, SQLModel

from db.models import utcnow

# Columns both tables share; the service's Defaults value has the same names.
FIELDS = ("model", "aspect", "style", "negative", "steps", "private")
MEMBER_FIELDS = (*FIELDS, "remix")


class MemberPreferences(SQLModel, table=True):
    __tablename__ = "member_preferences"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    model: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    aspect: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    style: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    negative: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    steps: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    # Results only the member sees (ephemeral replies; a DM when the interaction has expired).
    private: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    # Reroll, Vary, Zoom and Pan first open a modal with the prompt to edit.
    remix: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class ServerDefaults(SQLModel, table=True):
    __tablename__ = "server_defaults"

    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    model: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    aspect: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    style: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    negative: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    steps: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    private: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    # The admin who changed them last (an admin action, not the admin's personal data).
    updated_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
