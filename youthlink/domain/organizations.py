"""Organizations: the city's tree (city committee → town committees, affiliated orgs, Youth Homes)."""

from __future__ import annotations

import uuid
from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Organization
from youthlink.errors import NotFound


async def lineages(session: AsyncSession, org_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each organization with its ancestors (itself first), in one recursive query."""
    if not org_ids:
        return {}
    tree = (
        select(Organization.id.label("origin"), Organization.id, Organization.parent_id)
        .where(Organization.id.in_(org_ids))
        .cte("lineage", recursive=True)
    )
    parent = (
        select(tree.c.origin, Organization.id, Organization.parent_id)
        .select_from(tree)
        .join(Organization, Organization.id == tree.c.parent_id)
    )
    tree = tree.union_all(parent)
    result: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for origin, org_id, _ in await session.execute(select(tree.c.origin, tree.c.id, tree.c.parent_id)):
        result[origin].append(org_id)
    return dict(result)


async def subtree(session: AsyncSession, roots: list[uuid.UUID]) -> set[uuid.UUID]:
    """The given organizations and all their descendants, in one recursive query."""
    if not roots:
        return set()
    tree = select(Organization.id).where(Organization.id.in_(roots)).cte("subtree", recursive=True)
    tree = tree.union_all(select(Organization.id).join(tree, Organization.parent_id == tree.c.id))
    return set((await session.scalars(select(tree.c.id))).all())


async def lineage(session: AsyncSession, org_id: uuid.UUID, field: str = "organizationId") -> list[uuid.UUID]:
    found = (await lineages(session, [org_id])).get(org_id)
    if not found:
        raise NotFound("ORGANIZATION_NOT_FOUND", "组织不存在", field)
    return found


async def find_by_name_or_id(session: AsyncSession, name_or_id: str) -> Organization:
    try:
        org = await session.get(Organization, uuid.UUID(name_or_id))
    except ValueError:
        org = await session.scalar(select(Organization).where(Organization.name == name_or_id))
    if org is None:
        raise NotFound("ORGANIZATION_NOT_FOUND", f"组织不存在: {name_or_id}", "organization")
    return org
