"""The Celery app. JSON only, late acks, rejected on worker loss, prefetch 1, time limits under the
broker's visibility timeout, one queue per area so a long matching batch never delays crediting hours.

Safe because every job is idempotent (see youthlink/workers/jobs.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from youthlink.config import get_settings
from youthlink.runtime import broker_url
from youthlink.workers.queues import QUEUES


def _every(job: str, seconds: float) -> dict[str, Any]:
    """A beat entry: `job` every `seconds`; a run still queued when the next is due is dropped, not piled up."""
    return {"task": job, "schedule": timedelta(seconds=seconds), "options": {"expires": seconds}}


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("youthlink", include=["youthlink.workers.jobs"])
    app.conf.update(
        broker_url=broker_url() or "memory://unconfigured",
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.job_soft_time_limit,
        task_time_limit=settings.job_time_limit,
        broker_transport_options={
            "visibility_timeout": settings.broker_visibility_timeout,
            "unacked_restore_interval": settings.broker_restore_interval,
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=1,
        # Each area is its own queue, bound by its own routing key (never the default queue's).
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue="default",
        task_default_exchange="default",
        task_default_routing_key="default",
        task_routes={f"{area}.*": {"queue": area} for area in QUEUES if area != "default"},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
        beat_schedule={
            "outbox-relay": _every("outbox.relay", settings.outbox_sweep_seconds),
            "hours-auto-approve": _every("hours.auto_approve", settings.hours_review_sweep_seconds),
            "hours-deadlines": _every("hours.deadlines", settings.hours_daily_seconds),
            "hours-reconcile": _every("hours.reconcile", settings.hours_daily_seconds),
            "notifications-remind": _every("notifications.remind", settings.notification_sweep_seconds),
            "stats-rebuild": _every("stats.rebuild", settings.hours_daily_seconds),
            "notifications-sweep": _every("notifications.sweep", settings.notification_sweep_seconds),
            "stats-monthly-report": _every("stats.monthly_report", settings.hours_daily_seconds),
            "matching-batch": _every("matching.run_batch", settings.matching_batch_seconds),
        },
    )
    return app


app = make_celery()
