"""jobs.heartbeat_at: when the process running a job last said it still is

Revision ID: 0004_job_heartbeat
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_job_heartbeat"
down_revision = "0001"
branch_labels = ("heartbeat",)
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "heartbeat_at")
