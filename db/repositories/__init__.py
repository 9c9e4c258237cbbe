"""Rows' lifecycle, one module per area. Functions take the caller's session and never commit: the
caller's transaction does. Which queued job starts next is db.queue."""

from db.repositories import jobs, users

__all__ = ["jobs", "users"]
