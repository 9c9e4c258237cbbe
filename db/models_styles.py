"""Styles a server's admins added for /imagine ``style:`` (/admin styles); each server sees only its own."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class ServerStyle(SQLModel, table=True):
    """One server's style: a prompt template ({prompt} marks the member's words) and a negative."""

    __tablename__ = "server_styles"
    __table_args__ = (UniqueConstraint("guild_id", "name", name="uq_server_styles_guild_name"),)

    id: int | None = Field(default=None, primary_key=True)
    guild_id: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    name: str = Field(sa_column=Column(String(32), nullable=False))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    negative: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The admin who added it (an admin action, kept like a pause's author).
    added_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    added_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
