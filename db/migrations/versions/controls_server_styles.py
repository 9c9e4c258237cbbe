"""server_styles: styles a server's admins added for /imagine (/admin styles)

Revision ID: controls_server_styles
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "controls_server_styles"
down_revision = "0001"
branch_labels = ("server_styles",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "server_styles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative", sa.Text(), nullable=False),
        sa.Column("added_by", sa.BigInteger(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("guild_id", "name", name="uq_server_styles_guild_name"),
    )
    op.create_index("ix_server_styles_guild_id", "server_styles", ["guild_id"])


def downgrade() -> None:
    op.drop_index("ix_server_styles_guild_id", table_name="server_styles")
    op.drop_table("server_styles")
