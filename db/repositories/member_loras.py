"""Members' trained LoRAs and servers' training rules. Keyword-only, take the caller's session,
never commit on their own."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import utcnow
from db.models_training import GuildTraining, MemberLora


async def add(session: AsyncSession, lora: MemberLora) -> MemberLora:
    session.add(lora)
    await session.flush()
    return lora


async def get(session: AsyncSession, *, lora_id: int) -> MemberLora | None:
    return await session.get(MemberLora, lora_id)


async def by_name(session: AsyncSession, *, user_id: int, name: str) -> MemberLora | None:
    return await session.scalar(select(MemberLora).where(MemberLora.user_id == user_id, MemberLora.name == name))


async def owned(session: AsyncSession, *, user_id: int) -> Sequence[MemberLora]:
    return (await session.scalars(select(MemberLora).where(MemberLora.user_id == user_id)
                                  .order_by(MemberLora.name))).all()


async def usable(session: AsyncSession, *, user_id: int, guild_id: int | None) -> Sequence[MemberLora]:
    """The member's own LoRAs and those shared on this server (none from other servers)."""
    condition = MemberLora.user_id == user_id
    if guild_id is not None:
        condition = or_(condition, (MemberLora.guild_id == guild_id) & MemberLora.shared.is_(True))
    return (await session.scalars(select(MemberLora).where(condition).order_by(MemberLora.name))).all()


async def rename(session: AsyncSession, *, lora_id: int, name: str) -> None:
    await session.execute(update(MemberLora).where(MemberLora.id == lora_id).values(name=name))


async def set_shared(session: AsyncSession, *, lora_id: int, shared: bool, by: int | None) -> None:
    await session.execute(update(MemberLora).where(MemberLora.id == lora_id)
                          .values(shared=shared, shared_by=by if shared else None))


async def remove(session: AsyncSession, *, lora_id: int) -> None:
    await session.execute(delete(MemberLora).where(MemberLora.id == lora_id))


async def remove_all(session: AsyncSession, *, user_id: int) -> list[str]:
    """Delete every LoRA row of a member; returns their files, for the caller to delete."""
    files = list((await session.scalars(select(MemberLora.file).where(MemberLora.user_id == user_id))).all())
    await session.execute(delete(MemberLora).where(MemberLora.user_id == user_id))
    return files


async def guild_rules(session: AsyncSession, *, guild_id: int) -> GuildTraining | None:
    return await session.get(GuildTraining, guild_id)


async def set_guild_rules(session: AsyncSession, *, guild_id: int, enabled: bool, role_id: int | None,
                          real_people: bool, by: int | None) -> None:
    row = await session.get(GuildTraining, guild_id)
    if row is None:
        row = GuildTraining(guild_id=guild_id)
        session.add(row)
    row.enabled, row.role_id, row.real_people, row.updated_by, row.updated_at = enabled, role_id, real_people, by, utcnow()
    await session.flush()
