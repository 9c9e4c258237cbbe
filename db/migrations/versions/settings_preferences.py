"""member_preferences and server_defaults: /settings and /admin defaults

Revision ID: settings_preferences
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "settings_preferences"
down_revision = "0001"
branch_labels = ("preferences",)
depends_on = None


def _defaults() -> list[sa.Column]:
    return [
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("aspect", sa.String(length=8), nullable=True),
        sa.Column("style", sa.String(length=100), nullable=True),
        sa.Column("negative", sa.Text(), nullable=True),
        sa.Column("steps", sa.Integer(), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "member_preferences",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_defaults(),
        sa.Column("remix", sa.Boolean(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "server_defaults",
        sa.Column("guild_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        *_defaults(),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_defaults")
    op.drop_table("member_preferences")
