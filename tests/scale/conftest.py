"""Scale tests: the database fixtures (SQLite and PostgreSQL) and a real Redis for remote workers."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.db.conftest import db_engine, sessions  # noqa: F401  (fixtures shared with tests/db)

REDIS_URL = os.environ.get("ATELIER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_queue() -> AsyncIterator[str]:
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), 3)
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        await client.aclose()
        pytest.skip(f"no Redis server at {REDIS_URL} ({exc.__class__.__name__}); set ATELIER_TEST_REDIS_URL")
    name = f"atelier-test-{uuid.uuid4().hex[:10]}"
    yield name
    keys = [k async for k in client.scan_iter(match=f"*{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
