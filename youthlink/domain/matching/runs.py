"""The record of matching runs: what each batch decided, whether it is proven optimal, and its bound."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models.tasks import MatchingRun
from youthlink.domain import policies
from youthlink.domain.actor import Actor
from youthlink.domain.pagination import page_size


async def latest(session: AsyncSession, actor: Actor, first: int | None) -> list[MatchingRun]:
    policies.require_city_admin(actor)
    query = select(MatchingRun).order_by(MatchingRun.started_at.desc(), MatchingRun.id).limit(page_size(first))
    return list((await session.scalars(query)).all())
