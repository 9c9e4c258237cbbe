"""Tables for accounts: quota settings, daily usage, the credit ledger, per-guild retention.

Discord ids are BIGINT. Direct messages have no guild; they are stored under guild id 0 (a real
snowflake is never 0), because these columns are parts of primary keys and unique constraints.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.models import utcnow

NO_GUILD = 0


class QuotaScope(enum.StrEnum):
    guild = "guild"    # the guild's default allowance (target_id = guild id)
    role = "role"      # a role tier (target_id = role id); a member gets the best of their roles
    member = "member"  # a per-member override (target_id = user id); wins over everything


class LedgerKind(enum.StrEnum):
    reserve = "reserve"
    charge = "charge"
    refund = "refund"


class QuotaSetting(SQLModel, table=True):
    __tablename__ = "quota_settings"
    __table_args__ = (UniqueConstraint("guild_id", "scope", "target_id", name="uq_quota_settings_target"),)

    id: int | None = Field(default=None, primary_key=True)
    guild_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    scope: str = Field(sa_column=Column(String(8), nullable=False))
    target_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    # Credits per day; a negative number means unlimited.
    daily_credits: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class QuotaUsage(SQLModel, table=True):
    """Credits held (reserved or charged, not refunded) by one member in one guild on one UTC day.

    The reservation is a guarded UPDATE of this row (`used + cost <= allowance`), which is atomic on
    SQLite (BEGIN IMMEDIATE) and on PostgreSQL (the row lock re-checks the condition)."""

    __tablename__ = "quota_usage"

    user_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    day: str = Field(sa_column=Column(String(10), primary_key=True))  # YYYY-MM-DD (UTC)
    used: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class CreditEntry(SQLModel, table=True):
    """The credit ledger: one reserve per job, then exactly one charge or one refund."""

    __tablename__ = "credit_ledger"
    __table_args__ = (
        UniqueConstraint("job_id", "kind", name="uq_credit_ledger_job_kind"),
        Index("ix_credit_ledger_user", "user_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    user_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    guild_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    day: str = Field(sa_column=Column(String(10), nullable=False))
    kind: str = Field(sa_column=Column(String(8), nullable=False))
    credits: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class AccountGuildSettings(SQLModel, table=True):
    __tablename__ = "account_guild_settings"

    guild_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    # Finished jobs (prompts, outputs) and ledger entries older than this are deleted; None: the default.
    retention_days: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))
