"""jobs and moderation_cases ids are never reused (SQLite AUTOINCREMENT)

Without AUTOINCREMENT SQLite hands a new row the largest id + 1, so deleting the newest jobs
(retention, /forget) gave their ids to the next jobs, and old buttons and messages then named
another member's job. SQLite cannot add AUTOINCREMENT in place: the tables are rebuilt (batch
mode; db.migrate runs it with foreign keys off so the outputs survive). PostgreSQL's sequences
never hand out an id twice: nothing to do there.

Revision ID: 0007_job_ids
Revises: 0001
"""
from alembic import op

revision = "0007_job_ids"
down_revision = "0001"
branch_labels = ("job_ids",)
depends_on = ("0002_moderation",)

TABLES = ("jobs", "moderation_cases")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
