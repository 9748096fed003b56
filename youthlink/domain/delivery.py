"""Delivering notifications over channels besides the in-app inbox: email (SMTP) and webhooks (JSON POST for
enterprise-chat robots, HMAC-SHA256 signed). A city adds one (SMS, say) by implementing `Channel` and
listing it in `CHANNELS`.

Each (notification, channel) has one `notification_deliveries` row, created with the notification in its
cause's transaction, and a `notifications.deliver` job in the outbox. The job moves the row forward with
state-guarded updates only:

1. claim: PENDING (or a SENDING claim older than the lease: its worker died) -> SENDING, committed;
2. send, outside any transaction, with the delivery's id as the idempotency key (Message-ID, a header);
3. finish: SENDING -> SENT under our claim, with the outbox job marked done in the same transaction.

A redelivered job finds the row SENT (nothing to do) or SENDING under a live claim (it leaves the job for the
outbox sweep, which sends it again once the lease is over). So a worker killed before or during step 2 costs
one lease of delay, never a lost or a second message; one killed between the receiver's acceptance and step 3
(a window of one UPDATE) sends again after the lease with the same idempotency key, which the receiver can
drop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.config import Settings, get_settings
from youthlink.db.models import Account, Notification, NotificationDelivery, NotificationPreference, Task
from youthlink.domain import outbox

EXTERNAL = ("email", "webhook")
# Time-critical messages go out at night too; everything else waits for the end of the quiet hours.
URGENT = frozenset({"task.reminder", "signup.promoted"})
# Urgent only when their task is near: a change to (or the cancellation of) tomorrow morning's task must reach
# the volunteer tonight; one of next week's can wait for the morning.
URGENT_WHEN_DUE_WITHIN = {"task.changed": timedelta(hours=24), "task.cancelled": timedelta(hours=24)}
MUTED_BY_REMINDER_SETTING = frozenset({"task.reminder"})


@dataclass(frozen=True)
class Delivery:
    """What a channel needs: where to, the rendered text, and the idempotency key."""

    id: uuid.UUID
    kind: str
    subject: str
    body: str
    payload: dict[str, Any]
    address: str
    created_at: datetime


class Channel(Protocol):
    name: str

    async def send(self, delivery: Delivery) -> None:
        """Hand the message over; raise on failure (the job retries). Must not be called twice concurrently
        for one delivery (the claim ensures that)."""


# Templates (Jinja2, never string concatenation). Each kind has a subject and a body per language; the context
# is the payload plus facts the recipient may see (a task's title and start), never other people's data.
TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "zh": {
        "signup.confirmed": ("报名成功：{{ task_title }}", "您已确认参加“{{ task_title }}”，{{ starts_at }} 开始。"),
        "signup.waitlisted": ("已进入候补：{{ task_title }}", "“{{ task_title }}”名额已满，您已进入候补名单。"),
        "signup.promoted": ("候补转正：{{ task_title }}",
                            "有名额空出，您已确认参加“{{ task_title }}”，{{ starts_at }} 开始。"),
        "signup.rejected": ("报名未通过：{{ task_title }}", "很遗憾，您对“{{ task_title }}”的报名未通过。"),
        "task.invited": ("任务邀请：{{ task_title }}", "诚邀您报名“{{ task_title }}”，{{ starts_at }} 开始。"),
        "task.reminder": ("任务提醒：{{ task_title }}", "“{{ task_title }}”将于 {{ starts_at }} 开始，请准时签到。"),
        "task.underfilled": ("任务缺人：{{ task_title }}", "“{{ task_title }}”{{ starts_at }} 开始，"
                             "目前 {{ filled }}/{{ slots }} 人。"),
        "hours.approved": ("服务时长已审核", "您的 {{ hours }} 小时服务时长已审核通过。"),
        "hours.rejected": ("服务时长被驳回", "您的一条服务记录被驳回，请查看原因。"),
        "hours.corrected": ("服务时长已更正", "您的一条服务记录已更正 {{ hours }} 小时。"),
        "hours.correction_decided": ("更正申请已处理", "您的更正申请已处理。"),
        "hours.correction_requested": ("新的更正申请", "有志愿者提交了服务时长更正申请，请及时处理。"),
        "hours.deadline": ("服务记录即将超期", "{{ pending }} 条服务记录待录入或审核，其中 {{ late }} 条已超期。"),
        "star_level.reached": ("星级志愿者", "恭喜您达到 {{ level }} 星级志愿者！"),
        "certificate.requested": ("新的证明申请", "有志愿者申请志愿服务证明，请及时出具。"),
        "certificate.issued": ("志愿服务证明已出具", "您的志愿服务证明已出具，可在平台下载。"),
        "task.changed": ("任务变更：{{ task_title }}", "“{{ task_title }}”的时间或地点有变：现为 {{ starts_at }} 至 "
                         "{{ ends_at }}，地点 {{ address }}（原为 {{ old_starts_at }}，{{ oldAddress }}）。"),
        "task.cancelled": ("任务取消：{{ task_title }}", "很抱歉，原定 {{ starts_at }} 开始的“{{ task_title }}”已取消。"
                           "原因：{{ reason }}"),
        "stats.monthly_report": ("{{ period }} 月报已生成",
                                 "{{ period }} 的志愿服务月报已生成，可在平台下载（Excel、CSV）。"),
    },
    "en": {
        "signup.confirmed": ("Signed up: {{ task_title }}", "You are confirmed for “{{ task_title }}”, "
                             "starting {{ starts_at }}."),
        "signup.waitlisted": ("Waitlisted: {{ task_title }}", "“{{ task_title }}” is full; you are on the waitlist."),
        "signup.promoted": ("Off the waitlist: {{ task_title }}", "A place opened: you are confirmed for "
                            "“{{ task_title }}”, starting {{ starts_at }}."),
        "signup.rejected": ("Not selected: {{ task_title }}", "Your application to “{{ task_title }}” was not "
                            "accepted."),
        "task.invited": ("Invitation: {{ task_title }}", "You are invited to “{{ task_title }}”, starting "
                         "{{ starts_at }}."),
        "task.reminder": ("Reminder: {{ task_title }}", "“{{ task_title }}” starts {{ starts_at }}."),
        "task.underfilled": ("Under-filled: {{ task_title }}", "“{{ task_title }}” starts {{ starts_at }} with "
                             "{{ filled }}/{{ slots }} volunteers."),
        "task.changed": ("Changed: {{ task_title }}", "“{{ task_title }}” has moved: now {{ starts_at }} to "
                         "{{ ends_at }} at {{ address }} (was {{ old_starts_at }}, {{ oldAddress }})."),
        "task.cancelled": ("Cancelled: {{ task_title }}", "Sorry: “{{ task_title }}”, due to start {{ starts_at }}, "
                           "is cancelled. Reason: {{ reason }}"),
        "hours.approved": ("Service hours approved", "{{ hours }} hours of your service were approved."),
        "hours.rejected": ("Service hours rejected", "One of your service records was rejected; see the reason."),
        "hours.corrected": ("Service hours corrected", "One of your service records was corrected by {{ hours }} "
                            "hours."),
        "hours.correction_decided": ("Correction request decided", "Your correction request was decided."),
        "hours.correction_requested": ("New correction request", "A volunteer asked for a correction of their "
                                       "service hours."),
        "hours.deadline": ("Service records near their deadline", "{{ pending }} service records wait to be "
                           "recorded or approved; {{ late }} are past the deadline."),
        "star_level.reached": ("Star volunteer", "Congratulations: you are now a {{ level }}-star volunteer!"),
        "certificate.requested": ("New certificate request", "A volunteer asked for a certificate of service."),
        "certificate.issued": ("Certificate issued", "Your certificate of volunteer service is ready to download."),
        "stats.monthly_report": ("Report for {{ period }}", "The volunteer service report for {{ period }} is ready "
                                 "to download (Excel, CSV)."),
    },
}
FALLBACK = ("Youthlink", "{{ kind }}")
_environment = Environment(
    loader=DictLoader({}), autoescape=select_autoescape(default_for_string=False), undefined=StrictUndefined,
)


def is_urgent(kind: str, due_at: datetime | None, now: datetime) -> bool:
    """Whether a message goes out during the quiet hours: always for URGENT kinds; for the kinds in
    URGENT_WHEN_DUE_WITHIN when `due_at` (the task's start; for a moved task, the earlier of the old and the
    new one) is that close, or past."""
    if kind in URGENT:
        return True
    within = URGENT_WHEN_DUE_WITHIN.get(kind)
    return within is not None and due_at is not None and due_at - now <= within


def render(kind: str, context: dict[str, Any], language: str = "zh") -> tuple[str, str]:
    """(subject, body) in the language, falling back to Chinese, then to a neutral text."""
    subject, body = TEMPLATES.get(language, {}).get(kind) or TEMPLATES["zh"].get(kind) or FALLBACK
    values = {"kind": kind, **context}
    return (_environment.from_string(subject).render(values), _environment.from_string(body).render(values))


def quiet_until(now: datetime, settings: Settings) -> datetime | None:
    """The end of the quiet hours (city time) when `now` falls in them; None otherwise."""
    zone = ZoneInfo(settings.city_timezone)
    local = now.astimezone(zone)
    start, end = time.fromisoformat(settings.notification_quiet_start), time.fromisoformat(
        settings.notification_quiet_end)
    if start == end:
        return None
    at = local.time()
    inside = (start <= at or at < end) if start > end else (start <= at < end)
    if not inside:
        return None
    day = local.date() if at < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


async def preferences_of(session: AsyncSession, *, account_id: uuid.UUID | None,
                         volunteer_id: uuid.UUID | None) -> NotificationPreference | None:
    query = select(NotificationPreference)
    if account_id is not None:
        query = query.where(NotificationPreference.account_id == account_id)
    else:
        query = query.join(Account, Account.id == NotificationPreference.account_id).where(
            Account.volunteer_id == volunteer_id)
    return (await session.scalars(query.limit(1))).first()


def channels_for(preference: NotificationPreference | None) -> list[str]:
    if preference is None:
        return []
    found = []
    if "email" in preference.channels and preference.email:
        found.append("email")
    if "webhook" in preference.channels and preference.webhook_url:
        found.append("webhook")
    return found


async def schedule(session: AsyncSession, notification_id: uuid.UUID, kind: str,
                   preference: NotificationPreference | None, now: datetime | None = None,
                   due_at: datetime | None = None) -> int:
    """Create the notification's deliveries (one per chosen channel) and their outbox jobs, in the caller's
    transaction. Idempotent: the (notification, channel) key holds. `due_at`: see `is_urgent`."""
    channels = channels_for(preference)
    if not channels:
        return 0
    now = now or datetime.now(UTC)
    not_before = None if is_urgent(kind, due_at, now) else quiet_until(now, get_settings())
    made = 0
    for channel in channels:
        delivery_id = await session.scalar(
            insert(NotificationDelivery)
            .values(id=uuid.uuid4(), notification_id=notification_id, channel=channel, state="PENDING",
                    attempts=0, not_before=not_before)
            .on_conflict_do_nothing(index_elements=[NotificationDelivery.notification_id, NotificationDelivery.channel])
            .returning(NotificationDelivery.id)
        )
        if delivery_id is not None:
            await outbox.record_job(session, "notifications.deliver", delivery_id=str(delivery_id))
            made += 1
    return made


async def schedule_many(session: AsyncSession, rows: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> int:
    """`schedule` for many volunteers' notifications at once ((notification id, volunteer id, kind)): one query
    for their preferences (the matcher's batch)."""
    if not rows:
        return 0
    preferences = {volunteer_id: preference for volunteer_id, preference in (await session.execute(
        select(Account.volunteer_id, NotificationPreference)
        .join(Account, Account.id == NotificationPreference.account_id)
        .where(Account.volunteer_id.in_({volunteer_id for _, volunteer_id, _ in rows}))
    )).all()}
    made = 0
    for notification_id, volunteer_id, kind in rows:
        if volunteer_id in preferences:
            made += await schedule(session, notification_id, kind, preferences[volunteer_id])
    return made


@dataclass(frozen=True)
class Claim:
    delivery_id: uuid.UUID
    claimed_at: datetime
    attempts: int


async def claim(session: AsyncSession, delivery_id: uuid.UUID, now: datetime | None = None) -> Claim | str:
    """PENDING (or SENDING under an expired lease) -> SENDING. Returns the claim, or why there is none:
    "done" (sent or given up), "busy" (another worker holds a live claim), "later" (quiet hours), "missing"."""
    now = now or datetime.now(UTC)
    lease = timedelta(seconds=get_settings().notification_delivery_lease_seconds)
    row = (await session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id,
               or_(NotificationDelivery.state == "PENDING",
                   (NotificationDelivery.state == "SENDING") & (NotificationDelivery.claimed_at < now - lease)),
               or_(NotificationDelivery.not_before.is_(None), NotificationDelivery.not_before <= now))
        .values(state="SENDING", claimed_at=now, attempts=NotificationDelivery.attempts + 1)
        .returning(NotificationDelivery.claimed_at, NotificationDelivery.attempts)
    )).first()
    if row is not None and row[0] is not None:
        return Claim(delivery_id, row[0], row[1])
    current = (await session.execute(
        select(NotificationDelivery.state, NotificationDelivery.not_before)
        .where(NotificationDelivery.id == delivery_id))).first()
    if current is None:
        return "missing"
    state, not_before = current
    if state in ("SENT", "FAILED"):
        return "done"
    if state == "PENDING" and not_before is not None and not_before > now:
        return "later"
    return "busy"


async def prepare(session: AsyncSession, delivery_id: uuid.UUID) -> tuple[str, Delivery] | None:
    """The channel and the rendered message of a claimed delivery (None when its recipient left no address)."""
    row = (await session.execute(
        select(NotificationDelivery, Notification)
        .join(Notification, Notification.id == NotificationDelivery.notification_id)
        .where(NotificationDelivery.id == delivery_id)
    )).first()
    if row is None:
        return None
    delivery, notification = row
    preference = await preferences_of(session, account_id=notification.recipient_account_id,
                                      volunteer_id=notification.recipient_volunteer_id)
    address = None
    if preference is not None:
        address = preference.email if delivery.channel == "email" else preference.webhook_url
    if not address:
        return None
    context = dict(notification.payload)
    zone = ZoneInfo(get_settings().city_timezone)

    def local(at: datetime) -> str:
        return at.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    if "taskId" in context:
        # The task as it is now (a moved task's message shows where and when it is, whenever it goes out).
        task = (await session.execute(select(Task.title, Task.starts_at, Task.ends_at, Task.address).where(
            Task.id == uuid.UUID(str(context["taskId"]))))).first()
        if task is not None:
            context.update(task_title=task[0], starts_at=local(task[1]), ends_at=local(task[2]), address=task[3])
    if isinstance(context.get("oldStartsAt"), str):
        context["old_starts_at"] = local(datetime.fromisoformat(context["oldStartsAt"]))
    for name in ("task_title", "starts_at", "ends_at", "address", "old_starts_at"):
        context.setdefault(name, "")
    subject, body = render(notification.kind, context, get_settings().notification_language)
    return delivery.channel, Delivery(id=delivery.id, kind=notification.kind, subject=subject, body=body,
                                      payload=dict(notification.payload), address=address,
                                      created_at=notification.created_at)


async def finish(session: AsyncSession, done: Claim, error: str | None = None) -> bool:
    """SENDING -> SENT (or back to PENDING, or FAILED after the last attempt) under our own claim only."""
    guard = (NotificationDelivery.id == done.delivery_id, NotificationDelivery.state == "SENDING",
             NotificationDelivery.claimed_at == done.claimed_at)
    if error is None:
        values: dict[str, Any] = {"state": "SENT", "sent_at": datetime.now(UTC), "last_error": None}
    else:
        gave_up = done.attempts >= get_settings().notification_delivery_max_attempts
        values = {"state": "FAILED" if gave_up else "PENDING", "last_error": error[:300]}
    result = await session.execute(update(NotificationDelivery).where(*guard).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def due_again(session: AsyncSession, now: datetime | None = None, limit: int = 500) -> int:
    """The sweep: deliveries that waited out the quiet hours, or whose worker died (an expired claim), get a new
    outbox job. Sending them twice is harmless: the claim lets one through."""
    now = now or datetime.now(UTC)
    lease = timedelta(seconds=get_settings().notification_delivery_lease_seconds)
    ids = (await session.scalars(
        select(NotificationDelivery.id)
        .where(or_((NotificationDelivery.state == "PENDING") & (NotificationDelivery.not_before <= now),
                   (NotificationDelivery.state == "SENDING") & (NotificationDelivery.claimed_at < now - lease)))
        .order_by(NotificationDelivery.created_at).limit(limit)
    )).all()
    for delivery_id in ids:
        await outbox.record_job(session, "notifications.deliver", delivery_id=str(delivery_id))
    return len(ids)


# The channels.

class EmailChannel:
    """SMTP (with STARTTLS and a login when configured); the delivery id is the Message-ID's left part."""

    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _send(self, message: EmailMessage) -> None:
        s = self.settings
        assert s.notification_smtp_host is not None
        with smtplib.SMTP(s.notification_smtp_host, s.notification_smtp_port,
                          timeout=s.notification_send_timeout_seconds) as smtp:
            if s.notification_smtp_starttls:
                smtp.starttls()
            if s.notification_smtp_username and s.notification_smtp_password:
                smtp.login(s.notification_smtp_username, s.notification_smtp_password.get_secret_value())
            smtp.send_message(message)

    async def send(self, delivery: Delivery) -> None:
        if not self.settings.notification_smtp_host:
            raise RuntimeError("YOUTHLINK_NOTIFICATION_SMTP_HOST is not set")
        message = EmailMessage()
        message["From"] = self.settings.notification_email_from
        message["To"] = delivery.address
        message["Subject"] = delivery.subject
        message["Message-ID"] = make_msgid(idstring=str(delivery.id), domain="youthlink")
        message["X-Youthlink-Delivery"] = str(delivery.id)
        message.set_content(delivery.body)
        await asyncio.get_running_loop().run_in_executor(None, self._send, message)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over "timestamp.body", hex: the receiver recomputes it with the shared secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookChannel:
    """A JSON POST, signed (X-Youthlink-Signature: HMAC-SHA256 of "timestamp.body"), retried with exponential
    backoff on network errors and 5xx answers; a 4xx answer is final for this attempt."""

    name = "webhook"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def secret(self) -> str:
        configured = self.settings.notification_webhook_secret
        return configured.get_secret_value() if configured else self.settings.secret()

    async def send(self, delivery: Delivery) -> None:
        body = json.dumps({
            "id": str(delivery.id), "kind": delivery.kind, "title": delivery.subject, "text": delivery.body,
            "payload": delivery.payload, "createdAt": delivery.created_at.isoformat(),
            # The enterprise-chat robots' plain-text message shape.
            "msgtype": "text", "content": {"text": delivery.body},
        }, ensure_ascii=False).encode()
        timestamp = str(int(datetime.now(UTC).timestamp()))
        headers = {"Content-Type": "application/json; charset=utf-8", "X-Youthlink-Delivery": str(delivery.id),
                   "X-Youthlink-Timestamp": timestamp,
                   "X-Youthlink-Signature": "sha256=" + sign(self.secret(), timestamp, body)}
        retries = self.settings.notification_webhook_retries
        async with httpx.AsyncClient(timeout=self.settings.notification_send_timeout_seconds) as client:
            for attempt in range(retries + 1):
                try:
                    response = await client.post(delivery.address, content=body, headers=headers)
                    if response.status_code < 500:
                        response.raise_for_status()
                        return
                    error: Exception = RuntimeError(f"webhook answered {response.status_code}")
                except httpx.TransportError as exc:
                    error = exc
                if attempt == retries:
                    raise error
                await asyncio.sleep(self.settings.notification_webhook_backoff_seconds * 2**attempt)


def channels(settings: Settings | None = None) -> dict[str, Channel]:
    """Every channel by name (in-app is the notifications table itself). Add a city's own channel here."""
    settings = settings or get_settings()
    return {"email": EmailChannel(settings), "webhook": WebhookChannel(settings)}
