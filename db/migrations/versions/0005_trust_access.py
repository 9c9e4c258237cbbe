"""paused_guilds: servers whose admins paused their queue (/admin pause)

Revision ID: 0005_trust_access
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_trust_access"
down_revision = "0001"
branch_labels = ("trust_access",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paused_guilds",
        sa.Column("guild_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("paused_by", sa.BigInteger(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("paused_guilds")
