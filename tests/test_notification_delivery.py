"""Delivery over email and webhooks, each message once per channel, against real receivers and a real worker.

The receivers are real processes: an SMTP server (aiosmtpd, writing a maildir) and an HTTP server that
records every request (and can answer 500 to the first ones). Like the ledger's fault tests, each test here
runs its own Redis and its own Celery worker (configured for the receivers), publishes the outbox's
`notifications.deliver` jobs to it, and kills the worker's child for real.
"""

from __future__ import annotations

import asyncio
import json
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import youthlink
from tests import factories
from tests import services as svc
from tests.test_ledger_faults import Broker, Worker, publish, start_worker, sweep
from tests.test_ledger_faults import broker as broker  # the fixture: our own Redis
from tests.test_loop_end_to_end import eventually
from youthlink.config import Settings, get_settings
from youthlink.db.models import Notification, NotificationDelivery, NotificationPreference, OutboxJob
from youthlink.db.models.enums import SignupStatus
from youthlink.db.uow import Database
from youthlink.domain import delivery, notifications, signups

RECEIVER = r'''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
log, failures = sys.argv[1], int(sys.argv[3])
seen = {"n": 0}
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        seen["n"] += 1
        status = 500 if seen["n"] <= failures else 200
        with open(log, "a") as f:
            f.write(json.dumps({"status": status, "headers": dict(self.headers), "body": body.decode()}) + "\n")
        self.send_response(status); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *args): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler).serve_forever()
'''
SECRET = "webhook-secret-for-tests"


@dataclass
class Receivers:
    maildir: Path
    smtp_port: int
    webhook_log: Path
    webhook_url: str

    def emails(self) -> list[Any]:
        if not self.maildir.exists():
            return []
        return list(mailbox.Maildir(str(self.maildir), create=False))

    def webhooks(self, status: int | None = 200) -> list[dict[str, Any]]:
        if not self.webhook_log.exists():
            return []
        rows = [json.loads(line) for line in self.webhook_log.read_text().splitlines() if line]
        return [r for r in rows if status is None or r["status"] == status]


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "a receiver exited early"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def start_receivers(folder: Path, webhook_failures: int = 0) -> tuple[Receivers, list[subprocess.Popen[bytes]]]:
    smtp_port, http_port = svc.free_port(), svc.free_port()
    maildir = folder / f"maildir-{uuid.uuid4().hex[:6]}"
    log = folder / f"webhooks-{uuid.uuid4().hex[:6]}.jsonl"
    smtp = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{smtp_port}",
                             "-c", "aiosmtpd.handlers.Mailbox", str(maildir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    http = subprocess.Popen([sys.executable, "-c", RECEIVER, str(log), str(http_port), str(webhook_failures)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(smtp_port, smtp)
    _wait_for_port(http_port, http)
    return Receivers(maildir, smtp_port, log, f"http://127.0.0.1:{http_port}/robot"), [smtp, http]


@pytest.fixture
def receivers(services: svc.Services) -> Iterator[Any]:
    started: list[subprocess.Popen[bytes]] = []

    def start(webhook_failures: int = 0) -> Receivers:
        found, processes = start_receivers(services.folder, webhook_failures)
        started.extend(processes)
        return found

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def delivery_workers(services: svc.Services, broker: Broker) -> Iterator[Any]:
    started: list[Worker] = []

    def start(name: str, found: Receivers, **env: str) -> Worker:
        settings = dict(
            YOUTHLINK_NOTIFICATION_SMTP_HOST="127.0.0.1",
            YOUTHLINK_NOTIFICATION_SMTP_PORT=str(found.smtp_port), YOUTHLINK_NOTIFICATION_WEBHOOK_SECRET=SECRET,
            YOUTHLINK_NOTIFICATION_WEBHOOK_BACKOFF_SECONDS="0.2", YOUTHLINK_NOTIFICATION_QUIET_START="00:00",
            YOUTHLINK_NOTIFICATION_QUIET_END="00:00",
        )
        settings.update(env)
        worker = start_worker(services, broker, name, "notifications", **settings)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(autouse=True)
def no_quiet_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Quiet hours off in this process (the tests of quiet hours set them themselves)."""
    monkeypatch.setattr(get_settings(), "notification_quiet_start", "00:00")
    monkeypatch.setattr(get_settings(), "notification_quiet_end", "00:00")


async def confirmed_volunteer_with_channels(db: Any, found: Receivers | None, channels: list[str],
                                            mute_reminders: bool = False) -> tuple[Any, uuid.UUID]:
    """A volunteer with email and webhook preferences who signs up (confirmed) for a task, without the
    session's relay (its jobs must reach our own broker only). Returns (volunteer actor, notification id)."""
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, slots=5)
    volunteer, _ = await factories.volunteer(db)
    async with db.unit_of_work() as session:
        session.add(NotificationPreference(
            account_id=volunteer.account_id, channels=channels, mute_reminders=mute_reminders,
            email="volunteer@example.org", webhook_url=found.webhook_url if found else "http://127.0.0.1:9/x"))
    quiet = Database(db.engine)  # no relay
    async with quiet.unit_of_work() as session:
        await signups.sign_up(session, volunteer, task.id)
    async with db.read() as session:
        notification_id = await session.scalar(select(Notification.id).where(
            Notification.recipient_volunteer_id == volunteer.volunteer_id, Notification.kind == "signup.confirmed"))
    assert notification_id is not None
    return volunteer, notification_id


async def deliveries(db: Any, notification_id: uuid.UUID) -> dict[str, tuple[str, int]]:
    async with db.read() as session:
        rows = (await session.execute(select(NotificationDelivery.channel, NotificationDelivery.state,
                                             NotificationDelivery.attempts)
                                      .where(NotificationDelivery.notification_id == notification_id))).all()
    return {channel: (state, attempts) for channel, state, attempts in rows}


async def deliver_jobs(db: Any, notification_id: uuid.UUID) -> list[tuple[int, str]]:
    """The outbox's `notifications.deliver` jobs for the notification: (outbox id, delivery id)."""
    async with db.read() as session:
        ids = {str(i) for i in (await session.scalars(select(NotificationDelivery.id).where(
            NotificationDelivery.notification_id == notification_id))).all()}
        jobs = (await session.execute(select(OutboxJob.id, OutboxJob.args)
                                      .where(OutboxJob.name == "notifications.deliver"))).all()
    return [(job_id, args["delivery_id"]) for job_id, args in jobs if args["delivery_id"] in ids]


# The domain

def test_templates_render_in_chinese_and_english_without_other_peoples_data() -> None:
    context = {"task_title": "海洋净滩", "starts_at": "2026-12-01 09:00"}
    assert delivery.render("task.reminder", context) == (
        "任务提醒：海洋净滩", "“海洋净滩”将于 2026-12-01 09:00 开始，请准时签到。")
    assert delivery.render("task.reminder", context, "en") == (
        "Reminder: 海洋净滩", "“海洋净滩” starts 2026-12-01 09:00.")
    assert delivery.render("hours.approved", {"hours": "3.0"}, "en")[1] == "3.0 hours of your service were approved."
    # an unknown kind gets a neutral text
    assert delivery.render("stats.monthly", {}) == ("Youthlink", "stats.monthly")


def test_every_kind_the_platform_writes_has_its_text_in_both_languages() -> None:
    # given every kind of notification the code writes (literal kinds, and the sign-up decisions)
    source = "\n".join(p.read_text() for p in Path(youthlink.__file__).parent.rglob("*.py"))
    kinds = set(re.findall(r'kind="([a-z_]+\.[a-z_]+)"', source)) | {
        f"signup.{status.value.lower()}" for status in (SignupStatus.CONFIRMED, SignupStatus.WAITLISTED,
                                                        SignupStatus.REJECTED)} | {"signup.promoted"}
    assert len(kinds) >= 19
    # then each has a Chinese and an English text
    assert kinds <= set(delivery.TEMPLATES["zh"]), kinds - set(delivery.TEMPLATES["zh"])
    assert kinds <= set(delivery.TEMPLATES["en"]), kinds - set(delivery.TEMPLATES["en"])


def test_quiet_hours_hold_until_morning_in_the_city_zone() -> None:
    settings = Settings(notification_quiet_start="22:00", notification_quiet_end="07:00")
    # 23:30 in Shanghai is 15:30 UTC: held until 07:00 the next morning (23:00 UTC)
    assert delivery.quiet_until(datetime(2026, 12, 1, 15, 30, tzinfo=UTC), settings) == datetime(
        2026, 12, 1, 23, 0, tzinfo=UTC)
    # 06:00 in Shanghai (22:00 UTC the day before): held until 07:00 the same morning
    assert delivery.quiet_until(datetime(2026, 11, 30, 22, 0, tzinfo=UTC), settings) == datetime(
        2026, 11, 30, 23, 0, tzinfo=UTC)
    # noon: not held; equal bounds turn quiet hours off
    assert delivery.quiet_until(datetime(2026, 12, 1, 4, 0, tzinfo=UTC), settings) is None
    off = Settings(notification_quiet_start="00:00", notification_quiet_end="00:00")
    assert delivery.quiet_until(datetime(2026, 12, 1, 15, 30, tzinfo=UTC), off) is None


async def test_a_notification_gets_one_delivery_per_chosen_channel_in_its_transaction(db: Any, clean: None) -> None:
    # given a volunteer who chose email and webhooks
    # when they sign up (a notification is written)
    _, notification_id = await confirmed_volunteer_with_channels(db, None, ["email", "webhook"])

    # then each channel has one PENDING delivery and one outbox job, written with the sign-up
    assert await deliveries(db, notification_id) == {"email": ("PENDING", 0), "webhook": ("PENDING", 0)}
    assert len(await deliver_jobs(db, notification_id)) == 2
    # and scheduling again (a retried cause) adds nothing
    async with db.unit_of_work() as session:
        note = await session.get(Notification, notification_id)
        assert note is not None
        preference = await delivery.preferences_of(session, account_id=None, volunteer_id=note.recipient_volunteer_id)
        assert await delivery.schedule(session, notification_id, "signup.confirmed", preference) == 0
    assert len(await deliver_jobs(db, notification_id)) == 2


async def test_quiet_hours_delay_non_urgent_messages_and_muted_reminders_are_not_sent(
    db: Any, clean: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given quiet hours all day long but a minute, and a volunteer who chose email and muted reminders
    monkeypatch.setattr(get_settings(), "notification_quiet_start", "00:00")
    monkeypatch.setattr(get_settings(), "notification_quiet_end", "23:59")
    now = datetime.now(UTC)
    held = delivery.quiet_until(now, get_settings())

    # when they sign up, and the reminder sweep runs
    volunteer, notification_id = await confirmed_volunteer_with_channels(db, None, ["email"], mute_reminders=True)
    async with db.unit_of_work() as session:
        await notifications.send_due_reminders(session, now + (held - now if held else now - now))

    # then the confirmation waits for the end of the quiet hours (when it is quiet now)
    async with db.read() as session:
        not_before = await session.scalar(select(NotificationDelivery.not_before).where(
            NotificationDelivery.notification_id == notification_id))
        reminders = await session.scalar(select(Notification.id).where(
            Notification.recipient_volunteer_id == volunteer.volunteer_id, Notification.kind == "task.reminder"))
    if held is not None:
        assert not_before is not None and abs((not_before - held).total_seconds()) < 120
    # and no reminder was written for a volunteer who muted them
    assert reminders is None


# Through a real worker and real receivers

async def test_email_and_webhook_arrive_once_even_when_each_job_is_delivered_twice(
    db: Any, clean: None, receivers: Any, delivery_workers: Any, broker: Broker
) -> None:
    # given real SMTP and webhook receivers (the webhook answers 500 twice first), and a worker for them
    found = receivers(webhook_failures=2)
    delivery_workers("deliver", found)
    _, notification_id = await confirmed_volunteer_with_channels(db, found, ["email", "webhook"])

    # when each delivery job is published twice
    for job_id, delivery_id in await deliver_jobs(db, notification_id):
        for _ in range(2):
            publish(broker.url, "notifications.deliver", delivery_id=delivery_id, outbox_id=job_id)

    # then both are sent, once each: one email, one accepted webhook (after two 500s and backoff)
    async def sent() -> Any:
        now = await deliveries(db, notification_id)
        return now if all(state == "SENT" for state, _ in now.values()) else None

    assert await eventually(sent) == {"email": ("SENT", 1), "webhook": ("SENT", 1)}
    await asyncio.sleep(1.0)
    (email,) = found.emails()
    assert email["To"] == "volunteer@example.org" and email["X-Youthlink-Delivery"]
    assert len(found.webhooks()) == 1 and len(found.webhooks(status=500)) == 2
    # and the webhook is signed: HMAC-SHA256 of "timestamp.body" under the shared secret
    (hook,) = found.webhooks()
    headers = {k.lower(): v for k, v in hook["headers"].items()}
    expected = delivery.sign(SECRET, headers["x-youthlink-timestamp"], hook["body"].encode())
    assert headers["x-youthlink-signature"] == f"sha256={expected}"
    body = json.loads(hook["body"])
    assert body["kind"] == "signup.confirmed" and "海洋净滩" in body["text"]
    assert set(body["payload"]) == {"signupId", "taskId"}  # ids only: no name, no phone


@pytest.mark.parametrize("point", ["before_commit", "after_commit"])
async def test_a_worker_killed_mid_delivery_sends_each_message_once(
    db: Any, clean: None, services: svc.Services, receivers: Any, delivery_workers: Any, broker: Broker, point: str
) -> None:
    # given a worker whose child pauses 3 s just before sending (the claim committed) or just after marking
    # the delivery sent (before the ack), with a 2 s claim lease
    found = receivers()
    worker = delivery_workers("killed", found, YOUTHLINK_DEBUG_JOB_PAUSE_SECONDS="3",
                              YOUTHLINK_DEBUG_JOB_PAUSE_AT=point, YOUTHLINK_NOTIFICATION_DELIVERY_LEASE_SECONDS="2",
                              YOUTHLINK_OUTBOX_MAX_ATTEMPTS="20")
    _, notification_id = await confirmed_volunteer_with_channels(db, found, ["email", "webhook"])
    jobs = await deliver_jobs(db, notification_id)

    # when the email job is delivered and its child is killed with SIGKILL in the pause
    (email_job, email_delivery), = [(j, d) for j, d in jobs if (await _channel(db, d)) == "email"]
    publish(broker.url, "notifications.deliver", delivery_id=email_delivery, outbox_id=email_job)
    await eventually(lambda: _true(worker.count("debug pause") >= 1), within=30)
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)
    # (the webhook job goes through too, later: the pause holds it, no kill)
    webhook_job, webhook_delivery = next((j, d) for j, d in jobs if d != email_delivery)
    publish(broker.url, "notifications.deliver", delivery_id=webhook_delivery, outbox_id=webhook_job)

    # then the redelivered message, and the outbox's sweep once the claim's lease is over, finish the job
    async def sent() -> Any:
        now = await deliveries(db, notification_id)
        if all(state == "SENT" for state, _ in now.values()):
            return now
        sweep(services, broker.url)  # what beat does every few seconds
        return None

    done = await eventually(sent, within=60)
    # and exactly one email and one webhook arrived
    await asyncio.sleep(3.5)
    assert len(found.emails()) == 1 and len(found.webhooks()) == 1
    assert worker.count("WorkerLostError") >= 1
    assert done["email"][1] == (2 if point == "before_commit" else 1)  # claimed twice only when killed unsent


async def _channel(db: Any, delivery_id: str) -> str | None:
    async with db.read() as session:
        return await session.scalar(select(NotificationDelivery.channel).where(
            NotificationDelivery.id == uuid.UUID(delivery_id)))


async def _true(value: bool) -> bool:
    return value


async def test_a_city_channel_only_needs_a_name_and_send() -> None:
    # given an SMS channel a city writes (the interface: a name and `async send(delivery)`)
    sent: list[tuple[str, str]] = []

    class Sms:
        name = "sms"

        async def send(self, message: delivery.Delivery) -> None:
            sent.append((message.address, message.body))

    channel: delivery.Channel = Sms()
    subject, body = delivery.render("task.reminder", {"task_title": "净滩", "starts_at": "09:00"})

    # when a delivery is handed to it
    await channel.send(delivery.Delivery(id=uuid.uuid4(), kind="task.reminder", subject=subject, body=body,
                                         payload={}, address="13800000000", created_at=datetime.now(UTC)))

    # then it got the rendered text
    assert sent == [("13800000000", "“净滩”将于 09:00 开始，请准时签到。")]


SET_PREFERENCES = """mutation($i: SetNotificationPreferencesInput!) { setNotificationPreferences(input: $i) {
  preferences { channels email webhookUrl muteReminders } errors { field code } } }"""


async def test_a_volunteer_chooses_channels_and_mutes_reminders_through_graphql(gql: Any, db: Any, clean: None
                                                                               ) -> None:
    # given a volunteer
    volunteer, token = await factories.volunteer(db)

    # when they ask for email without an address, then set email with one and mute reminders
    refused = (await gql(SET_PREFERENCES, {"i": {"channels": ["email"]}}, token=token))["data"]
    chosen = (await gql(SET_PREFERENCES, {"i": {"channels": ["email", "email"], "email": "me@example.org",
                                                  "muteReminders": True}}, token=token))["data"]

    # then the first is refused as invalid input, the second is stored as asked (once per channel)
    assert refused["setNotificationPreferences"]["errors"] and not refused["setNotificationPreferences"]["preferences"]
    assert chosen["setNotificationPreferences"] == {"errors": [], "preferences": {
        "channels": ["email"], "email": "me@example.org", "webhookUrl": None, "muteReminders": True}}
    async with db.read() as session:
        stored = await session.get(NotificationPreference, volunteer.account_id)
    assert stored is not None and stored.mute_reminders and stored.channels == ["email"]
