"""job_inputs: a job's input images, out of jobs.params

Jobs queued before this revision carried their input images as base64 inside params; they are
moved here (the job names its input by id), so the scheduler never reads them again.

Revision ID: 0006_job_inputs
Revises: 0001
"""
import base64
import binascii
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0006_job_inputs"
down_revision = "0001"
branch_labels = ("job_inputs",)
depends_on = None

NAMES = ("init_image", "control_image")


def upgrade() -> None:
    inputs = op.create_table(
        "job_inputs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_job_inputs_job_id", "job_inputs", ["job_id"], unique=False)
    _move_inline_inputs(inputs)


def _move_inline_inputs(inputs: sa.Table) -> None:
    bind = op.get_bind()
    jobs = sa.table("jobs", sa.column("id", sa.Integer), sa.column("params", sa.JSON))
    text = sa.cast(jobs.c.params, sa.Text)
    rows = bind.execute(sa.select(jobs.c.id, jobs.c.params).where(
        sa.or_(*(text.like(f'%"{name}"%') for name in NAMES)))).all()
    for job_id, params in rows:
        params = json.loads(params) if isinstance(params, str) else dict(params or {})
        refs = dict(params.get("inputs") or {})
        for name in NAMES:
            value = params.get(name)
            if not isinstance(value, str):
                continue
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                continue
            refs[name] = bind.execute(inputs.insert().values(job_id=job_id, name=name, data=data,
                                                             created_at=datetime.now(UTC))).inserted_primary_key[0]
            del params[name]
        if refs:
            params["inputs"] = refs
            bind.execute(jobs.update().where(jobs.c.id == job_id).values(params=params))


def downgrade() -> None:
    op.drop_index("ix_job_inputs_job_id", table_name="job_inputs")
    op.drop_table("job_inputs")
