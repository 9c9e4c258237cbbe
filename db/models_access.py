"""Who has stopped Atelier where: servers whose admins paused their queue.

A bot-wide pause (owners only) stays a property of each process's pool; a server's pause is stored,
so every bot process sharing the database honours it and it survives a restart.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime
from sqlmodel import Field, SQLModel

from db.models import utcnow


class PausedGuild(SQLModel, table=True):
    """A server whose queued jobs wait until its admins resume (other servers' jobs run)."""

    __tablename__ = "paused_guilds"

    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # The admin who paused (kept for /admin stats; not personal data /forget removes: an admin action).
    paused_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    paused_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
