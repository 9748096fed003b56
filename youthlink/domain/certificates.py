"""Certificates of volunteer service (志愿服务证明).

A volunteer asks an organization that recorded their hours; the organization issues it, free. At issue the
facts are frozen on the certificate (hours from the ledger for that organization and period, the period,
the content, masked identity, number and verification code), so the PDF and the public page at
`/verify/<code>` always say the same thing. Anyone holding the code can verify it without logging in; a
revoked certificate says so there.
"""

from __future__ import annotations

import io
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import get_settings
from youthlink.db.models import Certificate, Organization, ServiceRecord, Volunteer
from youthlink.db.models.enums import RecordStatus
from youthlink.db.models.hours import CertificateStatus
from youthlink.domain import audit, notifications, organizations, personal_data, policies
from youthlink.domain.actor import Actor
from youthlink.domain.hours.commands import RequestCertificate, RevokeCertificate
from youthlink.domain.hours.ledger import ledger_entries
from youthlink.domain.personal_data import mask_name, mask_phone
from youthlink.errors import Conflict, Forbidden, NotFound

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by hand
CODE_LENGTH = 12
NUMBER_PREFIX = "WLZYFW"  # 温岭志愿服务


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def verify_url(code: str) -> str:
    return f"{get_settings().public_base_url.rstrip('/')}/verify/{code}"


async def _manages(session: AsyncSession, actor: Actor, organization_id: uuid.UUID) -> bool:
    return policies.manages_organization(actor, await organizations.lineage(session, organization_id))


def _ledger_for(volunteer_id: uuid.UUID, organization_id: uuid.UUID, period_from: date | None,
                period_to: date | None) -> Any:
    """The volunteer's ledger entries (approved records and their adjustments) with one organization."""
    records = (
        select(ServiceRecord.id, ServiceRecord.service_date, ServiceRecord.activity_name)
        .where(ServiceRecord.volunteer_id == volunteer_id, ServiceRecord.organization_id == organization_id,
               ServiceRecord.status == RecordStatus.APPROVED)
    )
    if period_from is not None:
        records = records.where(ServiceRecord.service_date >= period_from)
    if period_to is not None:
        records = records.where(ServiceRecord.service_date <= period_to)
    return records


async def _hours_for(session: AsyncSession, volunteer_id: uuid.UUID, organization_id: uuid.UUID,
                     period_from: date | None, period_to: date | None) -> tuple[Decimal, list[Any]]:
    rows = list((await session.execute(
        _ledger_for(volunteer_id, organization_id, period_from, period_to).order_by(ServiceRecord.service_date)
    )).all())
    if not rows:
        return Decimal(0), []
    entries = ledger_entries().subquery("entries")
    # The ledger's own definition, restricted to these records (an adjustment counts with its record).
    ids = [r.id for r in rows]
    total = await session.scalar(
        select(func.coalesce(func.sum(entries.c.hours), 0)).where(entries.c.record_id.in_(ids))
    )
    return Decimal(total or 0), rows


async def request_certificate(session: AsyncSession, actor: Actor, command: RequestCertificate) -> Certificate:
    """The volunteer asks an organization that recorded approved hours for them."""
    volunteer_id = policies.require_volunteer(actor)
    org = await session.get(Organization, command.organization_id)
    if org is None:
        raise NotFound("ORGANIZATION_NOT_FOUND", "组织不存在", "organizationId")
    hours, _ = await _hours_for(session, volunteer_id, org.id, command.period_from, command.period_to)
    if hours <= 0:
        raise Conflict("NO_HOURS", "该组织在此期间没有为您记录已审核的服务时长", "organizationId")
    waiting = await session.scalar(select(Certificate.id).where(
        Certificate.volunteer_id == volunteer_id, Certificate.organization_id == org.id,
        Certificate.status == CertificateStatus.REQUESTED))
    if waiting is not None:
        raise Conflict("CERTIFICATE_PENDING", "已向该组织申请证明，请等待出具", "organizationId")
    assert actor.account_id is not None
    certificate = Certificate(volunteer_id=volunteer_id, organization_id=org.id, status=CertificateStatus.REQUESTED,
                              period_from=command.period_from, period_to=command.period_to,
                              requested_by=actor.account_id, facts={})
    session.add(certificate)
    await session.flush()
    audit.record(session, actor.account_id, "certificate.request", "certificate", certificate.id)
    await notifications.notify_organization(session, org.id, kind="certificate.requested",
                                            payload={"certificateId": str(certificate.id)})
    return certificate


async def _for_update(session: AsyncSession, certificate_id: uuid.UUID) -> Certificate:
    certificate = await session.scalar(
        select(Certificate).where(Certificate.id == certificate_id).with_for_update())
    if certificate is None:
        raise NotFound("CERTIFICATE_NOT_FOUND", "证明不存在", "certificateId")
    return certificate


async def issue_certificate(session: AsyncSession, actor: Actor, certificate_id: uuid.UUID) -> Certificate:
    """The organization issues a requested certificate: the facts are computed from the ledger and frozen."""
    policies.require_login(actor)
    certificate = await _for_update(session, certificate_id)
    if not await _manages(session, actor, certificate.organization_id):
        raise Forbidden("FORBIDDEN", "无权出具该组织的证明", "certificateId")
    if certificate.status is not CertificateStatus.REQUESTED:
        raise Conflict("CERTIFICATE_DECIDED", "该证明已出具或已处理", "certificateId")
    hours, rows = await _hours_for(session, certificate.volunteer_id, certificate.organization_id,
                                   certificate.period_from, certificate.period_to)
    if hours <= 0:
        raise Conflict("NO_HOURS", "该志愿者在此期间没有已审核的服务时长", "certificateId")
    volunteer = await session.get(Volunteer, certificate.volunteer_id)
    org = await session.get(Organization, certificate.organization_id)
    assert volunteer is not None and org is not None
    now = datetime.now(UTC)
    activities = list(dict.fromkeys(r.activity_name for r in rows))
    certificate.facts = {
        "volunteerName": mask_name(volunteer.name),
        # The ID card masked (3303**********123X) when recorded; otherwise the masked phone identifies them.
        "volunteerId": personal_data.mask_id_card(personal_data.decrypt_id_card(volunteer.id_card_cipher))
        if volunteer.id_card_cipher else f"手机 {mask_phone(volunteer.phone)}",
        "organization": org.name,
        "periodFrom": rows[0].service_date.isoformat(),
        "periodTo": rows[-1].service_date.isoformat(),
        "records": len(rows),
        "activities": activities[:8],
        "moreActivities": max(len(activities) - 8, 0),
    }
    certificate.hours = hours
    certificate.status = CertificateStatus.ISSUED
    certificate.issued_at, certificate.issued_by = now, actor.account_id
    certificate.number = f"{NUMBER_PREFIX}{now.year}{certificate.serial:07d}"
    certificate.verification_code = new_code()
    await session.flush()
    audit.record(session, actor.account_id, "certificate.issue", "certificate", certificate.id,
                 number=certificate.number, hours=str(hours))
    await notifications.notify(session, volunteer_id=certificate.volunteer_id, kind="certificate.issued",
                               payload={"certificateId": str(certificate.id)})
    return certificate


async def revoke_certificate(session: AsyncSession, actor: Actor, command: RevokeCertificate) -> Certificate:
    policies.require_login(actor)
    certificate = await _for_update(session, command.certificate_id)
    if not await _manages(session, actor, certificate.organization_id):
        raise Forbidden("FORBIDDEN", "无权撤销该组织的证明", "certificateId")
    if certificate.status is not CertificateStatus.ISSUED:
        raise Conflict("CERTIFICATE_NOT_ISSUED", "只能撤销已出具的证明", "certificateId")
    certificate.status = CertificateStatus.REVOKED
    certificate.revoked_at, certificate.revoked_by = datetime.now(UTC), actor.account_id
    certificate.decided_reason = command.reason
    await session.flush()
    audit.record(session, actor.account_id, "certificate.revoke", "certificate", certificate.id,
                 reason=command.reason)
    return certificate


async def visible_certificate(session: AsyncSession, actor: Actor, certificate_id: uuid.UUID) -> Certificate:
    """For the volunteer it belongs to and the admins of its organization; NotFound for anyone else."""
    policies.require_login(actor)
    certificate = await session.get(Certificate, certificate_id)
    if certificate is None or (certificate.volunteer_id != actor.volunteer_id
                               and not await _manages(session, actor, certificate.organization_id)):
        raise NotFound("CERTIFICATE_NOT_FOUND", "证明不存在", "certificateId")
    return certificate


async def certificates_for(session: AsyncSession, actor: Actor, organization_id: uuid.UUID | None = None,
                           status: CertificateStatus | None = None, limit: int = 100) -> list[Certificate]:
    """The volunteer's own certificates, or (with an organization) the ones an admin handles."""
    policies.require_login(actor)
    query = select(Certificate)
    if organization_id is not None:
        if not await _manages(session, actor, organization_id):
            raise Forbidden("FORBIDDEN", "无权查看该组织的证明", "organizationId")
        query = query.where(Certificate.organization_id == organization_id)
    else:
        volunteer_id = policies.require_volunteer(actor)
        query = query.where(Certificate.volunteer_id == volunteer_id)
    if status is not None:
        query = query.where(Certificate.status == status)
    return list((await session.scalars(
        query.order_by(Certificate.created_at.desc(), Certificate.id).limit(min(limit, 100)))).all())


@dataclass(frozen=True)
class Verification:
    number: str
    volunteer_name: str
    hours: Decimal
    organization: str
    issued_on: date
    period_from: str
    period_to: str
    revoked: bool
    revoked_on: date | None


def _local_date(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(get_settings().city_timezone)).date()


async def verify(session: AsyncSession, code: str) -> Verification:
    """Public: what a certificate states, by its code (masked name only). Unknown codes are NotFound."""
    cleaned = code.strip().upper()
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        raise NotFound("CERTIFICATE_NOT_FOUND", "未找到该证明", "code")
    certificate = await session.scalar(select(Certificate).where(Certificate.verification_code == cleaned))
    if certificate is None or certificate.issued_at is None or certificate.hours is None:
        raise NotFound("CERTIFICATE_NOT_FOUND", "未找到该证明", "code")
    facts = certificate.facts
    return Verification(
        number=certificate.number or "", volunteer_name=facts["volunteerName"], hours=certificate.hours,
        organization=facts["organization"], issued_on=_local_date(certificate.issued_at),
        period_from=facts["periodFrom"], period_to=facts["periodTo"],
        revoked=certificate.status is CertificateStatus.REVOKED,
        revoked_on=_local_date(certificate.revoked_at) if certificate.revoked_at else None,
    )


def render_pdf(certificate: Certificate) -> bytes:
    """The certificate as an A4 PDF: Chinese text in the Adobe CID font STSong-Light (built into reportlab,
    no font file needed) and a QR code pointing to its public verification page."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    if certificate.status not in (CertificateStatus.ISSUED, CertificateStatus.REVOKED):
        raise Conflict("CERTIFICATE_NOT_ISSUED", "证明尚未出具", "certificateId")
    assert certificate.issued_at is not None and certificate.verification_code and certificate.hours is not None
    font = "STSong-Light"
    if font not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(font))
    facts = certificate.facts
    issued = _local_date(certificate.issued_at)
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    page.setTitle(f"志愿服务证明 {certificate.number}")
    page.setAuthor(facts["organization"])
    width, height = A4
    page.setFont(font, 26)
    page.drawCentredString(width / 2, height - 40 * mm, "志愿服务证明")
    page.setFont(font, 11)
    page.drawRightString(width - 25 * mm, height - 52 * mm, f"编号：{certificate.number}")
    activities = "、".join(facts["activities"]) + (f" 等 {facts['records']} 次服务" if facts["moreActivities"] else "")
    lines = [
        f"兹证明志愿者 {facts['volunteerName']}（证件：{facts['volunteerId']}）",
        f"于 {facts['periodFrom']} 至 {facts['periodTo']} 期间，在 {facts['organization']}",
        f"参加志愿服务 {facts['records']} 次，累计服务时长 {certificate.hours} 小时。",
        f"服务内容：{activities}",
        "服务时长为实际提供志愿服务的时间，不含往返交通时间。",
        "特此证明。",
    ]
    page.setFont(font, 14)
    y = height - 75 * mm
    for line in lines:
        page.drawString(25 * mm, y, line[:48])
        if len(line) > 48:
            y -= 9 * mm
            page.drawString(25 * mm, y, line[48:96])
        y -= 11 * mm
    page.setFont(font, 13)
    page.drawRightString(width - 25 * mm, y - 10 * mm, f"出具单位：{facts['organization']}")
    page.drawRightString(width - 25 * mm, y - 20 * mm, f"出具日期：{issued.isoformat()}")
    url = verify_url(certificate.verification_code)
    qr = QrCodeWidget(url)
    x0, y0, x1, y1 = qr.getBounds()
    size = 32 * mm
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(qr)
    renderPDF.draw(drawing, page, 25 * mm, 25 * mm)
    page.setFont(font, 10)
    page.drawString(62 * mm, 45 * mm, f"验证码：{certificate.verification_code}")
    page.drawString(62 * mm, 38 * mm, f"扫码或访问 {url} 查验真伪")
    page.drawString(62 * mm, 31 * mm, "依据《志愿服务记录与证明出具办法（试行）》免费出具")
    if certificate.status is CertificateStatus.REVOKED:
        page.setFont(font, 40)
        page.setFillColorRGB(0.8, 0, 0)
        page.drawCentredString(width / 2, height / 2, "已撤销")
    page.showPage()
    page.save()
    return buffer.getvalue()
