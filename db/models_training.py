"""Members' own LoRAs (/train, /loras) and who may train on each server (/admin training)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, ForeignKey, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow


class MemberLora(SQLModel, table=True):
    """A LoRA a member trained: its file lives in the member LoRA space (``file``, relative to it).

    Private to its owner unless shared to the server it was trained on (``shared``); /forget removes
    the row and the file."""

    __tablename__ = "member_loras"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_member_loras_user_name"),
                      {"sqlite_autoincrement": True})

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_column=Column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False,
                                          index=True))
    guild_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True, index=True))
    name: str = Field(sa_column=Column(String(64), nullable=False))
    file: str = Field(sa_column=Column(String(200), nullable=False))
    base_model: str = Field(sa_column=Column(String(100), nullable=False))
    family: str = Field(sa_column=Column(String(8), nullable=False))  # "sd1" or "sdxl"
    kind: str = Field(sa_column=Column(String(16), nullable=False))  # "subject" or "style"
    trigger: str = Field(sa_column=Column(String(32), nullable=False))
    steps: int = 0
    job_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    shared: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    shared_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class GuildTraining(SQLModel, table=True):
    """A server's training rules; no row means training is off there."""

    __tablename__ = "guild_training"

    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    enabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    # Only members with this role may train (None: every member, once enabled).
    role_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    # Subjects that are real people: allowed only when the server opts in (and the member confirms consent).
    real_people: bool = Field(default=False, sa_column=Column(Boolean, nullable=False, default=False))
    updated_by: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
