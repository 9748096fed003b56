"""GraphQL for the ledger: review queues, history, corrections, auto-approval, certificates, notifications.

Resolvers are thin: decode IDs and inputs, one read session or one unit of work (`perform`), one service.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry import relay
from strawberry.scalars import JSON
from strawberry.types import Info

from youthlink.db import models
from youthlink.db.models import enums
from youthlink.db.models.hours import CertificateStatus as DomainCertificateStatus
from youthlink.db.models.hours import CorrectionStatus as DomainCorrectionStatus
from youthlink.domain import certificates, hours, notifications
from youthlink.domain.actor import Actor
from youthlink.domain.hours import commands
from youthlink.domain.hours.records import HistoryEvent
from youthlink.errors import DomainError
from youthlink.graphql import types as t
from youthlink.graphql.context import context_of
from youthlink.graphql.ids import decode_id, decode_optional
from youthlink.graphql.mutations import ServiceRecordsPayload, perform

CorrectionStatus = strawberry.enum(DomainCorrectionStatus)
CertificateStatus = strawberry.enum(DomainCertificateStatus)


def _gid(type_name: str, value: uuid.UUID | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(relay.to_base64(type_name, str(value)))


@strawberry.type
class CorrectionRequest:
    id: strawberry.ID
    record_id: strawberry.ID
    hours: float = strawberry.field(description="The change asked for, in hours (negative to reduce)")
    what: str
    why: str
    status: CorrectionStatus  # type: ignore[valid-type]
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    adjustment_id: strawberry.ID | None

    @classmethod
    def from_row(cls, row: models.CorrectionRequest) -> CorrectionRequest:
        return cls(
            id=strawberry.ID(relay.to_base64("CorrectionRequest", str(row.id))),
            record_id=strawberry.ID(relay.to_base64("ServiceRecord", str(row.record_id))),
            hours=float(row.hours), what=row.what, why=row.why, status=row.status,
            created_at=row.created_at, decided_at=row.decided_at,
            decision_reason=row.decision_reason, adjustment_id=_gid("Adjustment", row.adjustment_id),
        )


@strawberry.type
class RecordEvent:
    at: datetime
    action: str = strawberry.field(description="hours.credit, hours.record, hours.import, hours.approve, "
                                               "hours.auto_approve, hours.reject, hours.late, "
                                               "hours.correction_request, hours.correction_decline, hours.adjust")
    actor_name: str | None = strawberry.field(description="Null for the system (jobs)")
    hours: float | None
    reason: str | None
    details: JSON

    @classmethod
    def from_event(cls, event: HistoryEvent) -> RecordEvent:
        data = event.data
        return cls(at=event.at, action=event.action, actor_name=event.actor_name,
                   hours=float(Decimal(data["hours"])) if data.get("hours") is not None else None,
                   reason=data.get("reason"), details=JSON(data))


@strawberry.type
class Certificate:
    id: strawberry.ID
    status: CertificateStatus  # type: ignore[valid-type]
    number: str | None
    hours: float | None
    period_from: date | None
    period_to: date | None
    requested_at: datetime
    issued_at: datetime | None
    revoked_at: datetime | None
    verification_code: str | None
    verify_url: str | None
    download_url: str | None = strawberry.field(description="The PDF (needs the same login)")
    organization_name: str | None
    row: strawberry.Private[models.Certificate]

    @classmethod
    def from_row(cls, row: models.Certificate) -> Certificate:
        issued = row.issued_at is not None
        facts = row.facts or {}
        return cls(
            id=strawberry.ID(relay.to_base64("Certificate", str(row.id))), status=row.status, number=row.number,
            hours=float(row.hours) if row.hours is not None else None,
            period_from=date.fromisoformat(facts["periodFrom"]) if "periodFrom" in facts else row.period_from,
            period_to=date.fromisoformat(facts["periodTo"]) if "periodTo" in facts else row.period_to,
            requested_at=row.created_at, issued_at=row.issued_at,
            revoked_at=row.revoked_at, verification_code=row.verification_code,
            verify_url=certificates.verify_url(row.verification_code) if row.verification_code else None,
            download_url=f"/certificates/{row.id}.pdf" if issued else None,
            organization_name=facts.get("organization"), row=row,
        )


@strawberry.type
class Notification:
    id: strawberry.ID
    kind: str
    payload: JSON
    created_at: datetime
    read_at: datetime | None

    @classmethod
    def from_row(cls, row: models.Notification) -> Notification:
        return cls(id=strawberry.ID(relay.to_base64("Notification", str(row.id))), kind=row.kind,
                   payload=JSON(row.payload), created_at=row.created_at,
                   read_at=row.read_at)


@strawberry.type
class NotificationInbox:
    unread_count: int
    items: list[Notification]


@strawberry.type
class AutoApproval:
    organization_id: strawberry.ID
    days: int | None = strawberry.field(description="Approve PENDING records this many days after recording; "
                                                    "null: off")


def _read_error(exc: DomainError) -> GraphQLError:
    """Queries refuse with a top-level error whose extensions.code says why."""
    return GraphQLError(exc.message, extensions={"code": exc.code, "field": exc.field})


@strawberry.type
class HoursQuery:
    @strawberry.field(description="An organization's records to review, by recording deadline (soonest first)")
    async def service_records_to_review(
        self, info: Info, organization_id: strawberry.ID,
        status: t.RecordStatus = t.RecordStatus.PENDING,  # type: ignore[valid-type,attr-defined]
        due_soon: bool = False, late: bool = False, first: int | None = None, after: str | None = None,
    ) -> t.CountedConnection[t.ServiceRecord]:
        ctx = context_of(info)
        try:
            org_id = decode_id(organization_id, "Organization", "organizationId")
            async with ctx.db.read() as session:
                page = await hours.records_for_review(session, ctx.actor, org_id, status=enums.RecordStatus(status),
                                                      due_soon=due_soon, late=late, first=first, after=after)
        except DomainError as exc:
            raise _read_error(exc) from None
        return t.build_connection(t.CountedConnection[t.ServiceRecord], page, t.ServiceRecord.from_row, after)

    @strawberry.field(description="Everything that happened to a record, oldest first")
    async def service_record_history(self, info: Info, record_id: strawberry.ID) -> list[RecordEvent]:
        ctx = context_of(info)
        try:
            rid = decode_id(record_id, "ServiceRecord", "recordId")
            async with ctx.db.read() as session:
                events = await hours.record_history(session, ctx.actor, rid)
        except DomainError as exc:
            raise _read_error(exc) from None
        return [RecordEvent.from_event(e) for e in events]

    @strawberry.field(description="Correction requests filed on a record")
    async def correction_requests(self, info: Info, record_id: strawberry.ID) -> list[CorrectionRequest]:
        ctx = context_of(info)
        try:
            rid = decode_id(record_id, "ServiceRecord", "recordId")
            async with ctx.db.read() as session:
                await hours.records.visible_record(session, ctx.actor, rid)
                rows = await hours.corrections.corrections_of(session, [rid])
        except DomainError as exc:
            raise _read_error(exc) from None
        return [CorrectionRequest.from_row(r) for r in rows]

    @strawberry.field(description="The viewer's certificates, or (with organizationId) an organization's")
    async def certificates(self, info: Info, organization_id: strawberry.ID | None = None,
                           status: CertificateStatus | None = None,  # type: ignore[valid-type]
                           ) -> list[Certificate]:
        ctx = context_of(info)
        try:
            org_id = decode_optional(organization_id, "Organization", "organizationId")
            async with ctx.db.read() as session:
                rows = await certificates.certificates_for(
                    session, ctx.actor, org_id, DomainCertificateStatus(status) if status else None)
        except DomainError as exc:
            raise _read_error(exc) from None
        return [Certificate.from_row(r) for r in rows]

    @strawberry.field(description="The viewer's in-app notifications, newest first")
    async def notifications(self, info: Info, first: int = 20, unread_only: bool = False) -> NotificationInbox:
        ctx = context_of(info)
        try:
            async with ctx.db.read() as session:
                rows, unread = await notifications.inbox(session, ctx.actor, first, unread_only)
        except DomainError as exc:
            raise _read_error(exc) from None
        return NotificationInbox(unread_count=unread, items=[Notification.from_row(r) for r in rows])


# Inputs and payloads

@strawberry.input
class RejectServiceRecordsInput:
    ids: list[strawberry.ID]
    reason: str


@strawberry.input
class RequestCorrectionInput:
    record_id: strawberry.ID
    hours: float = strawberry.field(description="The change asked for (e.g. 0.5 or -1.0)")
    what: str
    why: str


@strawberry.input
class DecideCorrectionInput:
    request_id: strawberry.ID
    accept: bool
    reason: str
    hours: float | None = strawberry.field(default=None, description="Accept a different change; default: asked")


@strawberry.input
class SetAutoApprovalInput:
    organization_id: strawberry.ID
    days: int | None = None


@strawberry.input
class RequestCertificateInput:
    organization_id: strawberry.ID
    period_from: date | None = None
    period_to: date | None = None


@strawberry.input
class IssueCertificateInput:
    certificate_id: strawberry.ID


@strawberry.input
class RevokeCertificateInput:
    certificate_id: strawberry.ID
    reason: str


@strawberry.input
class MarkNotificationsReadInput:
    ids: list[strawberry.ID]


@strawberry.type
class CorrectionRequestPayload:
    correction_request: CorrectionRequest | None = None
    errors: list[t.UserError]


@strawberry.type
class AutoApprovalPayload:
    auto_approval: AutoApproval | None = None
    errors: list[t.UserError]


@strawberry.type
class CertificatePayload:
    certificate: Certificate | None = None
    errors: list[t.UserError]


@strawberry.type
class MarkNotificationsReadPayload:
    marked: int
    errors: list[t.UserError]


@strawberry.input
class SetNotificationPreferencesInput:
    channels: list[str] = strawberry.field(description="Besides in-app (always on): email, webhook")
    email: str | None = None
    webhook_url: str | None = None
    mute_reminders: bool = False


@strawberry.type
class NotificationPreferences:
    channels: list[str]
    email: str | None
    webhook_url: str | None
    mute_reminders: bool


@strawberry.type
class SetNotificationPreferencesPayload:
    preferences: NotificationPreferences | None
    errors: list[t.UserError]


def _decimal(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _ids(values: list[strawberry.ID], type_name: str, field: str) -> list[uuid.UUID]:
    return [decode_id(v, type_name, field) for v in values[: commands.MAX_BULK + 1]]


def _certificate_payload(row: Any, errors: list[t.UserError]) -> CertificatePayload:
    return CertificatePayload(certificate=Certificate.from_row(row) if row else None, errors=errors)


def _correction_payload(row: Any, errors: list[t.UserError]) -> CorrectionRequestPayload:
    return CorrectionRequestPayload(correction_request=CorrectionRequest.from_row(row) if row else None,
                                    errors=errors)


@strawberry.type
class HoursMutation:
    @strawberry.mutation(description="Reject PENDING records in bulk, with a reason (approved ones are final)")
    async def reject_service_records(self, info: Info, input: RejectServiceRecordsInput) -> ServiceRecordsPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = commands.RejectServiceRecords(ids=_ids(input.ids, "ServiceRecord", "ids"), reason=input.reason)
            return await hours.reject_records(session, actor, command)

        records, errors = await perform(info, action)
        return ServiceRecordsPayload(records=[t.ServiceRecord.from_row(r) for r in records or []], errors=errors)

    @strawberry.mutation(description="A volunteer asks to correct one of their approved records")
    async def request_correction(self, info: Info, input: RequestCorrectionInput) -> CorrectionRequestPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = commands.RequestCorrection(
                record_id=decode_id(input.record_id, "ServiceRecord", "recordId"), hours=_decimal(input.hours),
                what=input.what, why=input.why)
            return await hours.request_correction(session, actor, command)

        return _correction_payload(*await perform(info, action))

    @strawberry.mutation(description="Accept a correction request (as an adjustment) or decline it, with a reason")
    async def decide_correction(self, info: Info, input: DecideCorrectionInput) -> CorrectionRequestPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = commands.DecideCorrection(
                request_id=decode_id(input.request_id, "CorrectionRequest", "requestId"), accept=input.accept,
                reason=input.reason, hours=_decimal(input.hours))
            return await hours.decide_correction(session, actor, command)

        return _correction_payload(*await perform(info, action))

    @strawberry.mutation(description="Approve an organization's PENDING records automatically after N days")
    async def set_auto_approval(self, info: Info, input: SetAutoApprovalInput) -> AutoApprovalPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = commands.SetAutoApproval(
                organization_id=decode_id(input.organization_id, "Organization", "organizationId"), days=input.days)
            return await hours.set_auto_approval(session, actor, command)

        row, errors = await perform(info, action)
        if row is None:
            return AutoApprovalPayload(errors=errors)
        return AutoApprovalPayload(auto_approval=AutoApproval(
            organization_id=strawberry.ID(relay.to_base64("Organization", str(row.organization_id))),
            days=row.auto_approve_after_days), errors=[])

    @strawberry.mutation(description="A volunteer asks an organization for a certificate of service (free)")
    async def request_certificate(self, info: Info, input: RequestCertificateInput) -> CertificatePayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = commands.RequestCertificate(
                organization_id=decode_id(input.organization_id, "Organization", "organizationId"),
                period_from=input.period_from, period_to=input.period_to)
            return await certificates.request_certificate(session, actor, command)

        return _certificate_payload(*await perform(info, action))

    @strawberry.mutation(description="The organization issues a requested certificate")
    async def issue_certificate(self, info: Info, input: IssueCertificateInput) -> CertificatePayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await certificates.issue_certificate(
                session, actor, decode_id(input.certificate_id, "Certificate", "certificateId"))

        return _certificate_payload(*await perform(info, action))

    @strawberry.mutation(description="Revoke an issued certificate; its verification page then says so")
    async def revoke_certificate(self, info: Info, input: RevokeCertificateInput) -> CertificatePayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = commands.RevokeCertificate(
                certificate_id=decode_id(input.certificate_id, "Certificate", "certificateId"), reason=input.reason)
            return await certificates.revoke_certificate(session, actor, command)

        return _certificate_payload(*await perform(info, action))

    @strawberry.mutation
    async def mark_notifications_read(self, info: Info, input: MarkNotificationsReadInput
                                      ) -> MarkNotificationsReadPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            return await notifications.mark_read(session, actor, _ids(input.ids, "Notification", "ids"))

        marked, errors = await perform(info, action)
        return MarkNotificationsReadPayload(marked=marked or 0, errors=errors)

    @strawberry.mutation(description="The viewer's notification channels (email, webhook) and muted reminders")
    async def set_notification_preferences(self, info: Info, input: SetNotificationPreferencesInput
                                           ) -> SetNotificationPreferencesPayload:
        async def action(session: AsyncSession, actor: Actor) -> Any:
            command = notifications.SetNotificationPreferences(
                channels=input.channels, email=input.email, webhook_url=input.webhook_url,  # type: ignore[arg-type]
                mute_reminders=input.mute_reminders)
            row = await notifications.set_preferences(session, actor, command)
            return NotificationPreferences(channels=list(row.channels), email=row.email, webhook_url=row.webhook_url,
                                           mute_reminders=row.mute_reminders)

        preferences, errors = await perform(info, action)
        return SetNotificationPreferencesPayload(preferences=preferences, errors=errors)
