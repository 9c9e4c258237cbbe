"""A server's own /imagine styles (/admin styles add|remove|list), stored per server.

Every read and write names the server it is for: one server's styles are never listed, offered or
applied in another. The packaged styles (bot/params/data/styles.toml) need no database.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import InvalidOption
from bot.params import styles
from bot.params.styles import Style
from db.repositories import styles as repo
from inference.limits import MAX_SERVER_STYLES


class StyleService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 reads: async_sessionmaker[AsyncSession] | None = None) -> None:
        self.sessions = sessions
        self.reads = reads or sessions

    async def for_guild(self, guild_id: int | None) -> dict[str, Style]:
        """The server's styles by name; none in direct messages."""
        if guild_id is None:
            return {}
        async with self.reads() as session:
            rows = await repo.list_styles(session, guild_id=guild_id)
        return {row.name: Style(row.name, row.prompt, row.negative) for row in rows}

    async def add(self, *, guild_id: int, name: str, prompt: str, negative: str = "", by: int | None = None) -> Style:
        async with self.sessions.begin() as session:
            existing = [row.name for row in await repo.list_styles(session, guild_id=guild_id)]
            style = styles.check_new(name, prompt, negative, existing)
            if len(existing) >= MAX_SERVER_STYLES:
                raise InvalidOption(f"This server has {len(existing)} styles, the most it may have; remove one first.")
            await repo.add_style(session, guild_id=guild_id, name=style.name, prompt=style.prompt,
                                 negative=style.negative, added_by=by)
        return style

    async def remove(self, *, guild_id: int, name: str) -> str:
        key = styles.normalize(name)
        async with self.sessions.begin() as session:
            removed = await repo.remove_style(session, guild_id=guild_id, name=key)
        if not removed:
            raise InvalidOption(f"This server has no style {key!r}; `/admin styles list` shows them.")
        return key
