"""All SQL lives here. Functions take the caller's session and never commit: the caller's transaction does."""

from db.repositories import jobs, users

__all__ = ["jobs", "users"]
