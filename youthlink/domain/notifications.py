"""In-app notifications, written in the transaction that causes them (so a rollback takes them back).

Small on purpose: a later issue adds channels (email, webhooks) that read these rows. Payloads carry ids
and figures only, never personal data. A `dedupe_key` makes a notification idempotent, so a job that runs
twice notifies once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import Notification, RoleGrant
from youthlink.db.models.enums import Role
from youthlink.domain import policies
from youthlink.domain.actor import Actor

MAX_LIST = 100


async def notify(session: AsyncSession, *, kind: str, payload: dict[str, Any], account_id: uuid.UUID | None = None,
                 volunteer_id: uuid.UUID | None = None, dedupe_key: str | None = None) -> bool:
    """Write one notification to an account or a volunteer; False when its dedupe key was already used."""
    if (account_id is None) == (volunteer_id is None):
        raise ValueError("a notification has exactly one recipient")
    statement = insert(Notification).values(
        id=uuid.uuid4(), recipient_account_id=account_id, recipient_volunteer_id=volunteer_id, kind=kind,
        payload=payload, dedupe_key=dedupe_key,
    )
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
    created = await session.scalar(statement.returning(Notification.id))
    return created is not None


async def organization_admin_ids(session: AsyncSession, organization_ids: Sequence[uuid.UUID]
                                 ) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The accounts that administer each organization directly (their inbox gets its reminders)."""
    rows = await session.execute(
        select(RoleGrant.organization_id, RoleGrant.account_id)
        .where(RoleGrant.role == Role.ORG_ADMIN, RoleGrant.organization_id.in_(list(organization_ids)))
        .order_by(RoleGrant.organization_id, RoleGrant.account_id)
    )
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for org_id, account_id in rows:
        if org_id is not None:
            found.setdefault(org_id, []).append(account_id)
    return found


async def notify_organization(session: AsyncSession, organization_id: uuid.UUID, *, kind: str,
                              payload: dict[str, Any], dedupe_prefix: str | None = None) -> int:
    admins = (await organization_admin_ids(session, [organization_id])).get(organization_id, [])
    sent = 0
    for account_id in admins:
        key = f"{dedupe_prefix}:{account_id}" if dedupe_prefix else None
        sent += await notify(session, kind=kind, payload=payload, account_id=account_id, dedupe_key=key)
    return sent


def _mine(actor: Actor) -> Any:
    clauses = [Notification.recipient_account_id == actor.account_id]
    if actor.volunteer_id is not None:
        clauses.append(Notification.recipient_volunteer_id == actor.volunteer_id)
    return or_(*clauses)


async def inbox(session: AsyncSession, actor: Actor, first: int = 50, unread_only: bool = False
                ) -> tuple[list[Notification], int]:
    """The actor's notifications, newest first, and how many are unread."""
    policies.require_login(actor)
    query = select(Notification).where(_mine(actor))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    rows = (await session.scalars(
        query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(min(first, MAX_LIST))
    )).all()
    unread = await session.scalar(
        select(func.count()).select_from(Notification).where(_mine(actor), Notification.read_at.is_(None))
    )
    return list(rows), int(unread or 0)


async def mark_read(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> int:
    policies.require_login(actor)
    result = await session.execute(
        update(Notification)
        .where(Notification.id.in_(list(ids)[:MAX_LIST]), _mine(actor), Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
