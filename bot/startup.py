"""Start-up checks: the database and Redis answer. An unreachable one is an expected fault, so it is one
line naming the setting (password hidden), not a traceback; ``atelier doctor`` runs the same checks."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from bot.errors import StartupError
from inference.remote import scrub_query

TIMEOUT = 10.0


def redact(url: str) -> str:
    """``url`` with its password replaced by ***, in the user part and in query parameters (such as
    ``?password=``): safe for logs and terminals. A URL too broken to parse is hidden whole."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url.partition("://")[0] + "://***"
    if parts.password is not None:
        host = parts.hostname or ""
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}" + (f":{port}" if port else ""))
    return urlunsplit(parts._replace(query=scrub_query(parts.query)))


def describe(exc: BaseException) -> str:
    """The innermost cause's class and first line: what went wrong, without the driver's stack."""
    while exc.__cause__ is not None and exc.__cause__ is not exc:
        exc = exc.__cause__
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


async def check_database(url: str) -> list[str]:
    """Connect to the database; the migrations it still lacks. StartupError when it does not answer."""
    from db import migrate
    from db.engine import UnsupportedDatabase, create_engine

    try:
        engine = create_engine(url)
    except UnsupportedDatabase as exc:
        raise StartupError(str(exc)) from None
    except Exception as exc:  # a URL SQLAlchemy can't parse (e.g. a port that is not a number)
        raise StartupError(f"ATELIER_DATABASE_URL is not a database URL Atelier can use ({redact(url)}): "
                           f"{type(exc).__name__}") from None
    try:
        async with asyncio.timeout(TIMEOUT):
            return await migrate.missing_heads(engine)
    except Exception as exc:
        raise StartupError(f"cannot reach the database in ATELIER_DATABASE_URL ({redact(url)}): "
                           f"{'no answer' if isinstance(exc, TimeoutError) else describe(exc)}") from None
    finally:
        await engine.dispose()


async def check_redis(url: str, setting: str = "ATELIER_REDIS_URL") -> None:
    """PING the remote workers' Redis. StartupError when it does not answer."""
    import redis.asyncio as redis

    client = redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        await client.ping()
    except Exception as exc:
        raise StartupError(f"cannot reach Redis in {setting} ({redact(url)}): {describe(exc)}") from None
    finally:
        await client.aclose()


async def preflight(database_url: str, redis_url: str | None) -> None:
    """What `atelier run` checks before it connects to Discord."""
    await check_database(database_url)
    if redis_url is not None:
        await check_redis(redis_url)
