"""member_loras (members' trained LoRAs) and guild_training (who may train where)

Revision ID: train_member_loras
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "train_member_loras"
down_revision = "0001"
branch_labels = ("training",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_loras",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("file", sa.String(200), nullable=False),
        sa.Column("base_model", sa.String(100), nullable=False),
        sa.Column("family", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("shared_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("user_id", "name", name="uq_member_loras_user_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_member_loras_user_id", "member_loras", ["user_id"])
    op.create_index("ix_member_loras_guild_id", "member_loras", ["guild_id"])
    op.create_table(
        "guild_training",
        sa.Column("guild_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("role_id", sa.BigInteger(), nullable=True),
        sa.Column("real_people", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("guild_training")
    op.drop_index("ix_member_loras_guild_id", "member_loras")
    op.drop_index("ix_member_loras_user_id", "member_loras")
    op.drop_table("member_loras")
