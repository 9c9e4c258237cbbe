"""Account tests run on SQLite and PostgreSQL, like every db test."""

from tests.db.conftest import db_engine, sessions  # noqa: F401  (fixtures)
