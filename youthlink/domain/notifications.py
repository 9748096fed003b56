"""Notifications, written in the transaction that causes them (so a rollback takes them back), with their
deliveries over the recipient's other channels (youthlink/domain/delivery.py).

Payloads carry ids and figures only, never personal data. A `dedupe_key` makes a notification idempotent, so a
job that runs twice notifies once. A volunteer who muted reminders gets none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import DateTime, String, cast, exists, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from youthlink.config import get_settings
from youthlink.db.models import MatchingDecision, Notification, NotificationPreference, RoleGrant, Signup, Task
from youthlink.db.models.enums import Role, SignupStatus, TaskStatus
from youthlink.domain import audit, delivery, policies
from youthlink.domain.actor import Actor

MAX_LIST = 100


async def notify(session: AsyncSession, *, kind: str, payload: dict[str, Any], account_id: uuid.UUID | None = None,
                 volunteer_id: uuid.UUID | None = None, dedupe_key: str | None = None,
                 due_at: datetime | None = None) -> bool:
    """Write one notification to an account or a volunteer; False when its dedupe key was already used.
    `due_at` (a task's start) makes some kinds urgent when it is near (`delivery.is_urgent`)."""
    if (account_id is None) == (volunteer_id is None):
        raise ValueError("a notification has exactly one recipient")
    preference = await delivery.preferences_of(session, account_id=account_id, volunteer_id=volunteer_id)
    if preference is not None and preference.mute_reminders and kind in delivery.MUTED_BY_REMINDER_SETTING:
        return False
    statement = insert(Notification).values(
        id=uuid.uuid4(), recipient_account_id=account_id, recipient_volunteer_id=volunteer_id, kind=kind,
        payload=payload, dedupe_key=dedupe_key,
    )
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
    created = await session.scalar(statement.returning(Notification.id))
    if created is None:
        return False
    # Its deliveries over the recipient's other channels, and their jobs, in this same transaction.
    await delivery.schedule(session, created, kind, preference, due_at=due_at)
    return True


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


async def notify_signup(session: AsyncSession, signup: Signup, kind: str) -> bool:
    """A sign-up's decision to its volunteer (`signup.confirmed`, `.waitlisted`, `.promoted`, `.rejected`);
    once per sign-up and kind, whichever path (or retried job) decides it."""
    return await notify(session, volunteer_id=signup.volunteer_id, kind=kind,
                        payload={"signupId": str(signup.id), "taskId": str(signup.task_id)},
                        dedupe_key=f"{kind}:{signup.id}")


async def matching_decided(session: AsyncSession, run_id: str, task_ids: Sequence[str]) -> int:
    """Tell every applicant a matching run decided its decision (`signup.confirmed`, `.waitlisted`,
    `.rejected`), a task round at a time from the run's MatchingDecisions, under the same dedupe keys as
    `notify_signup`: run twice, sent once. A sign-up the waitlist has promoted since (it carries a decision of
    its own) is told "promoted" by the promotion instead. (`task_ids`: the run's tasks, kept for jobs recorded
    before the decisions were kept per round.)"""
    from youthlink.domain.matching import candidates, decisions  # the matcher imports this module

    told = 0
    kinds = np.array([f"signup.{name.lower()}" for name in decisions.DECISIONS.values()])  # by decision code - 1
    rounds = await session.scalars(select(MatchingDecision.entries).where(MatchingDecision.run_id == uuid.UUID(run_id)))
    for raw in rounds.all():
        entries = decisions.unpack(raw)
        rows = (await session.execute(text("""
            INSERT INTO notifications (id, recipient_volunteer_id, kind, payload, dedupe_key)
            SELECT gen_random_uuid(), s.volunteer_id, d.kind,
                   jsonb_build_object('signupId', s.id::text, 'taskId', s.task_id::text), d.kind || ':' || s.id::text
            FROM unnest(CAST(:ids AS uuid[]), CAST(:kinds AS text[])) AS d(id, kind) JOIN signups s ON s.id = d.id
            WHERE s.match_explanation IS NULL
            ON CONFLICT (dedupe_key) DO NOTHING
            RETURNING id, recipient_volunteer_id, kind
        """), {"ids": candidates.signup_uuids(entries["id"]),
               "kinds": kinds[entries["decision"].astype(np.int64) - 1].tolist()})).all()
        await delivery.schedule_many(session, [(uuid.UUID(str(n)), uuid.UUID(str(v)), k) for n, v, k in rows])
        told += len(rows)
    return told


def reminder_window(lead: float, leads: Sequence[float]) -> float:
    """The reminder `lead` hours before a task is due until the next shorter reminder is (or the start):
    a volunteer confirmed an hour before the task gets the 2-hour reminder only, not a stale 1-day one."""
    shorter = [other for other in leads if other < lead]
    return max(shorter) if shorter else 0.0


def reminder_key(lead: float, signup_id: uuid.UUID, starts_at: datetime) -> str:
    """A reminder's dedupe key: once per sign-up, lead time and start time, so a task moved to another time
    gets its reminders again, for the new time (the ones sent for the old time stay sent)."""
    return f"task.reminder:{lead:g}h:{signup_id}:{int(starts_at.timestamp())}"


def _sent_before_keys_had_the_start(lead: float) -> Any:
    """A reminder written under the key without the start (before tasks could move) for the task's current
    start: sent already. Keeps a deploy from sending those again; unneeded once the longest lead has passed
    since (then it may go)."""
    sent = aliased(Notification)
    return exists().where(
        sent.dedupe_key == literal(f"task.reminder:{lead:g}h:") + cast(Signup.id, String),
        cast(sent.payload["startsAt"].astext, DateTime(timezone=True)) == Task.starts_at,
    )


async def send_due_reminders(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """The beat's sweep: reminders to volunteers before their confirmed tasks (`task.reminder`, one per
    sign-up and lead time), and a warning to the organization of a task still under-filled a day before it
    starts (`task.underfilled`, once per task). Dedupe keys make a sweep run twice (or late) send each once."""
    now = now or datetime.now(UTC)
    settings = get_settings()
    leads = sorted(set(settings.notification_reminder_hours), reverse=True)
    reminders = 0
    for lead in leads:
        until = reminder_window(lead, leads)
        rows = (await session.execute(
            select(Signup.id, Signup.volunteer_id, Task.id, Task.starts_at)
            .join(Task, Task.id == Signup.task_id)
            .where(Signup.status == SignupStatus.CONFIRMED, Task.status == TaskStatus.OPEN,
                   Task.starts_at > now + timedelta(hours=until), Task.starts_at <= now + timedelta(hours=lead),
                   ~_sent_before_keys_had_the_start(lead))
            .order_by(Task.starts_at, Signup.id)
        )).all()
        for signup_id, volunteer_id, task_id, starts_at in rows:
            reminders += await notify(
                session, volunteer_id=volunteer_id, kind="task.reminder",
                payload={"signupId": str(signup_id), "taskId": str(task_id), "hoursBefore": lead,
                         "startsAt": starts_at.isoformat()},
                dedupe_key=reminder_key(lead, signup_id, starts_at),
            )
    horizon = now + timedelta(hours=settings.notification_underfilled_hours)
    underfilled = (await session.execute(
        select(Task.id, Task.organization_id, Task.slots, Task.filled_slots)
        .where(Task.status == TaskStatus.OPEN, Task.starts_at > now, Task.starts_at <= horizon,
               Task.filled_slots < Task.slots)
        .order_by(Task.starts_at, Task.id)
    )).all()
    warnings = 0
    for task_id, organization_id, slots, filled in underfilled:
        warnings += await notify_organization(
            session, organization_id, kind="task.underfilled",
            payload={"taskId": str(task_id), "slots": slots, "filled": filled},
            dedupe_prefix=f"task.underfilled:{task_id}",
        )
    return {"reminders": reminders, "underfilled": warnings}


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


class SetNotificationPreferences(BaseModel):
    """The viewer's channels besides the in-app inbox (always on), their addresses, and muted reminders."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)
    channels: list[Literal["email", "webhook"]] = Field(default_factory=list, max_length=len(delivery.EXTERNAL))
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    webhook_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://\S+$")
    mute_reminders: bool = False

    @model_validator(mode="after")
    def _addresses(self) -> SetNotificationPreferences:
        if "email" in self.channels and not self.email:
            raise ValueError("email channel needs an email address")
        if "webhook" in self.channels and not self.webhook_url:
            raise ValueError("webhook channel needs a webhook URL")
        return self


async def set_preferences(session: AsyncSession, actor: Actor, command: SetNotificationPreferences
                          ) -> NotificationPreference:
    """One's own preferences only (an account's; there is no one else's to set)."""
    policies.require_login(actor)
    assert actor.account_id is not None
    values = {"channels": sorted(set(command.channels)), "email": command.email, "webhook_url": command.webhook_url,
              "mute_reminders": command.mute_reminders, "updated_at": datetime.now(UTC)}
    await session.execute(
        insert(NotificationPreference).values(account_id=actor.account_id, **values)
        .on_conflict_do_update(index_elements=[NotificationPreference.account_id], set_=values)
    )
    preference = await session.get(NotificationPreference, actor.account_id, populate_existing=True)
    assert preference is not None
    audit.record(session, actor.account_id, "notifications.preferences", "account", actor.account_id,
                 channels=values["channels"], mute_reminders=command.mute_reminders)
    return preference


async def mark_read(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> int:
    policies.require_login(actor)
    result = await session.execute(
        update(Notification)
        .where(Notification.id.in_(list(ids)[:MAX_LIST]), _mine(actor), Notification.read_at.is_(None))
        .values(read_at=datetime.now(UTC))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
