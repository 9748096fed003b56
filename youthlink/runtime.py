"""Where this process finds its database and broker: configured URLs, or the embedded default."""

from __future__ import annotations

from youthlink.config import get_settings
from youthlink.embedded import EmbeddedPostgres, start_postgres

_embedded_postgres: EmbeddedPostgres | None = None


def database_url() -> str:
    """The configured URL, or the embedded PostgreSQL in the data folder (started if it is not running)."""
    global _embedded_postgres
    settings = get_settings()
    if settings.database_url:
        return settings.database_url
    if _embedded_postgres is None:
        _embedded_postgres = start_postgres(settings.data_dir)
    return _embedded_postgres.url


def broker_url() -> str | None:
    """The configured broker, or the embedded Redis socket if a `youthlink up` is serving one."""
    settings = get_settings()
    if settings.broker_url:
        return settings.broker_url
    socket = (settings.data_dir / "redis" / "redis.sock").resolve()
    return f"redis+socket://{socket}" if socket.exists() else None


def redis_url() -> str | None:
    """Redis for login throttling: redis_url, else the broker when the broker is Redis (redis-py's URL form)."""
    settings = get_settings()
    if settings.redis_url:
        return settings.redis_url
    broker = broker_url()
    if broker and broker.startswith("redis+socket://"):
        return "unix://" + broker.removeprefix("redis+socket://")
    if broker and broker.startswith(("redis://", "rediss://")):
        return broker
    return None
