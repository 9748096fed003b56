"""The audit trail: who changed hours, roles and assignments, when, and what."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.db.models import AuditEntry


def record(
    session: AsyncSession,
    actor_account_id: uuid.UUID | None,
    action: str,
    entity_type: str,
    entity_id: uuid.UUID | str,
    **data: Any,
) -> None:
    """Add an audit row to the current transaction. `data` must never hold phone or ID-card numbers."""
    session.add(
        AuditEntry(
            actor_account_id=actor_account_id,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            data={k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items()},
        )
    )
