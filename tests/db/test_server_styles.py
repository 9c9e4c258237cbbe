"""Server styles on SQLite and PostgreSQL: each server's rows are its own, names are unique per server."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from bot.errors import InvalidOption
from bot.services.styles import StyleService
from db.repositories import styles as repo


async def test_styles_belong_to_one_server(sessions) -> None:  # type: ignore[no-untyped-def]
    service = StyleService(sessions)
    await service.add(guild_id=1, name="House", prompt="{prompt}, ours", negative="grey", by=7)
    await service.add(guild_id=2, name="house", prompt="{prompt}, theirs")
    mine = await service.for_guild(1)
    assert list(mine) == ["house"] and mine["house"].prompt == "{prompt}, ours" and mine["house"].negative == "grey"
    assert (await service.for_guild(2))["house"].prompt == "{prompt}, theirs"
    assert await service.for_guild(None) == {}
    with pytest.raises(InvalidOption, match="already has a style 'house'"):
        await service.add(guild_id=1, name="house", prompt="{prompt}")
    assert await service.remove(guild_id=2, name="HOUSE") == "house"
    assert await service.for_guild(2) == {} and list(await service.for_guild(1)) == ["house"]
    with pytest.raises(InvalidOption, match="no style 'house'"):
        await service.remove(guild_id=2, name="house")


async def test_the_database_keeps_names_unique_per_server(sessions) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await repo.add_style(session, guild_id=5, name="a", prompt="{prompt}", negative="", added_by=None)
            await repo.add_style(session, guild_id=5, name="a", prompt="{prompt}", negative="", added_by=None)
    async with sessions() as session:
        assert await repo.count_styles(session, guild_id=5) == 0


async def test_a_server_holds_a_bounded_number(sessions, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("bot.services.styles.MAX_SERVER_STYLES", 2)
    service = StyleService(sessions)
    await service.add(guild_id=3, name="a", prompt="{prompt}")
    await service.add(guild_id=3, name="b", prompt="{prompt}")
    with pytest.raises(InvalidOption, match="the most it may have"):
        await service.add(guild_id=3, name="c", prompt="{prompt}")
    await service.add(guild_id=4, name="c", prompt="{prompt}")
