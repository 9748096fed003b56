"""Finding an earlier upload's report again (for its downloadable error list), for those who may see it."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import HoursImport, VolunteerImport
from youthlink.domain import organizations, policies
from youthlink.domain.actor import Actor
from youthlink.errors import NotFound

Batch = HoursImport | VolunteerImport


async def visible_batch(session: AsyncSession, actor: Actor, model: type[HoursImport] | type[VolunteerImport],
                        batch_id: uuid.UUID) -> Batch:
    """The upload, for the admins of its organization (and above) and city admins; NotFound for others."""
    policies.require_login(actor)
    batch: Batch | None = await session.get(model, batch_id)
    if batch is None:
        raise NotFound("IMPORT_NOT_FOUND", "导入记录不存在", "importId")
    lineage = await organizations.lineage(session, batch.organization_id)
    if not policies.manages_organization(actor, lineage):
        raise NotFound("IMPORT_NOT_FOUND", "导入记录不存在", "importId")
    return batch
