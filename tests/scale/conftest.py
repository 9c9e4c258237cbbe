"""Scale tests: the database fixtures (SQLite and PostgreSQL) and a real Redis for remote workers."""

from __future__ import annotations

from tests.db.conftest import db_engine, sessions  # noqa: F401  (fixtures shared with tests/db)
