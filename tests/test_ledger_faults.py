"""Exactly-once crediting under real faults: a worker child killed with SIGKILL (before and after its commit),
a job that outlives the broker's visibility timeout and is delivered twice, and a broker restarted with and
without its data while a job waited in it (the outbox sweep sends it again).

Each test runs its own embedded Redis and its own Celery worker processes, so it controls exactly which
worker gets which message (the session's worker never sees them). Faults are caused for real: `kill -9` of
the prefork child, a visibility timeout of one second, a Redis process killed and its files deleted. To
hold a job at a known point the worker is started with the test-only setting YOUTHLINK_DEBUG_JOB_PAUSE_SECONDS
(refused unless YOUTHLINK_ENV=test): the job sleeps just before, or just after, its transaction commits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import func, select

from tests import factories
from tests import services as svc
from tests.test_hours_ledger import a_task, served
from tests.test_loop_end_to_end import eventually
from youthlink.db.models import OutboxJob, ServiceRecord, Signup
from youthlink.db.models.enums import JobState
from youthlink.db.uow import Database
from youthlink.domain import outbox
from youthlink.embedded import EmbeddedRedis, start_redis

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Broker:
    folder: Path
    server: EmbeddedRedis

    @property
    def url(self) -> str:
        return self.server.url

    def queued(self, queue: str = "hours") -> int:
        client = redis.Redis(unix_socket_path=str(self.server.socket))
        try:
            return sum(int(client.llen(key)) for key in client.keys(f"{queue}*"))  # type: ignore[union-attr]
        finally:
            client.close()

    def crash_and_lose_data(self) -> None:
        """`kill -9` the server, delete its append-only files, start it again: every queued message is gone."""
        self.server.process.kill()
        self.server.process.wait()
        for path in (self.folder / "redis").iterdir():
            if path.name.startswith("appendonly") or path.suffix in (".aof", ".rdb"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        self.server = start_redis(self.folder)
        celery_for.cache_clear()  # its pooled connections went with the old server

    def restart(self) -> None:
        """A clean restart: Redis writes its append-only file on SIGTERM and reads it back."""
        self.server.stop()
        self.server = start_redis(self.folder)
        celery_for.cache_clear()


@pytest.fixture
def broker() -> Iterator[Broker]:
    folder = Path(tempfile.mkdtemp(prefix="youthlink-fault-broker-"))
    own = Broker(folder, start_redis(folder))
    yield own
    own.server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def children(self) -> list[int]:
        """The prefork pool's child processes (the ones that run jobs)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.process.pid:
                    found.append(int(entry.name))
        return found

    def count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # cold shutdown: the test is over, nothing to finish
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@lru_cache
def celery_for(broker_url: str) -> Any:
    """A Celery app like the real one whose broker is `broker_url` (the test process's own is the session's)."""
    from youthlink.workers.app import make_celery

    app = make_celery()
    app.conf.broker_url = broker_url
    return app


def ping(broker_url: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            replies = celery_for(broker_url).control.ping(timeout=0.5) or []
        except (OSError, redis.exceptions.ConnectionError):
            celery_for.cache_clear()  # a connection from before a broker restart
            continue
        if any(next(iter(reply)).startswith(f"{name}@") for reply in replies):
            return
    raise RuntimeError(f"worker {name} did not answer")


def start_worker(services: svc.Services, broker: Broker, name: str, queue: str, concurrency: int = 1,
                 **env: str) -> Worker:
    """A Celery worker of our own on `queue`, on our own broker, answering pings before this returns."""
    log = services.folder / f"worker-{name}-{uuid.uuid4().hex[:6]}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "youthlink.workers.app", "worker", "-Q", queue,
         "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        env=services.env(YOUTHLINK_BROKER_URL=broker.url, **env), stdout=log.open("ab"),
        stderr=subprocess.STDOUT, cwd=ROOT,
    )
    worker = Worker(process, log)
    ping(broker.url, name)
    return worker


@pytest.fixture
def workers(services: svc.Services, broker: Broker) -> Iterator[Any]:
    started: list[Worker] = []

    def start(name: str, concurrency: int = 1, **env: str) -> Worker:
        worker = start_worker(services, broker, name, "hours", concurrency, **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def publish(broker_url: str, name: str, **kwargs: Any) -> str:
    """Hand a message to our own broker, as the relay does (`send_task`), and return its Celery id."""
    return str(celery_for(broker_url).send_task(name, kwargs=kwargs).id)


def sweep(services: svc.Services, broker_url: str) -> str:
    """The outbox relay's sweep (what beat runs every few seconds), in a process whose broker is ours."""
    code = ("from youthlink.workers import relay, runtime; "
            "print(runtime.run(relay.send(runtime.database(), None)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=services.env(YOUTHLINK_BROKER_URL=broker_url, YOUTHLINK_OUTBOX_RESEND_AFTER_SECONDS="1"))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def checked_out(db: Any) -> Signup:
    """A volunteer who served a 3-hour task yesterday and has checked out."""
    admin, _ = await factories.admin(db)
    volunteer, _ = await factories.volunteer(db)
    assert volunteer.volunteer_id is not None
    start = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    task = await a_task(db, admin, start, 3)
    return await served(db, task, volunteer.volunteer_id, task.starts_at, task.ends_at)


async def outbox_job(db: Any, signup: Signup) -> int:
    """The credit job in the outbox, recorded but not relayed (it must reach our broker only)."""
    quiet = Database(db.engine)  # no relay: the session's broker never sees it
    async with quiet.unit_of_work() as session:
        return await outbox.record_job(session, "hours.credit", signup_id=str(signup.id))


async def ledger(db: Any, signup: Signup, job_id: int | None = None) -> tuple[int, Any, int | None]:
    """(records for the sign-up, the outbox job's state, its attempts)."""
    async with db.read() as session:
        records = await session.scalar(select(func.count()).select_from(ServiceRecord)
                                       .where(ServiceRecord.signup_id == signup.id))
        job = await session.get(OutboxJob, job_id) if job_id is not None else None
    return int(records or 0), job.state if job else None, job.attempts if job else None


async def test_a_job_killed_before_its_commit_is_redelivered_and_credits_once(
    db: Any, clean: None, workers: Any, broker: Broker
) -> None:
    # given one worker child that pauses for 3 s just before committing, and a credit job in the outbox
    worker = workers("killed-early", YOUTHLINK_DEBUG_JOB_PAUSE_SECONDS="3",
                     YOUTHLINK_DEBUG_JOB_PAUSE_AT="before_commit")
    signup = await checked_out(db)
    job_id = await outbox_job(db, signup)

    # when the job is delivered and has done its work (attempt claimed, record inserted, not committed) ...
    publish(broker.url, "hours.credit", signup_id=str(signup.id), outbox_id=job_id)
    await eventually(lambda: _attempts_at_least(db, signup, job_id, 1))
    await asyncio.sleep(1.0)
    # ... and the worker child is killed with SIGKILL mid-way
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)

    # then the killed run left nothing behind (its transaction died with it)
    assert (await ledger(db, signup, job_id))[:2] == (0, JobState.PENDING)
    # and the message, rejected on worker loss (not acked), is redelivered to a fresh child that credits it
    await eventually(lambda: _done(db, signup, job_id), within=30)
    records, state, attempts = await ledger(db, signup, job_id)
    assert (records, state, attempts) == (1, JobState.DONE, 2)
    assert child not in worker.children() and worker.count("WorkerLostError") >= 1


@pytest.mark.parametrize("via_outbox", [pytest.param(True, id="outbox"), pytest.param(False, id="bare-message")])
async def test_a_job_killed_after_its_commit_is_redelivered_and_credits_once(
    db: Any, clean: None, workers: Any, broker: Broker, via_outbox: bool
) -> None:
    # given one worker child that pauses for 3 s after committing and before acknowledging the message
    worker = workers("killed-late", YOUTHLINK_DEBUG_JOB_PAUSE_SECONDS="3", YOUTHLINK_DEBUG_JOB_PAUSE_AT="after_commit")
    signup = await checked_out(db)
    job_id = await outbox_job(db, signup) if via_outbox else None

    # when the job credits the hours (committed) and its child is killed before the ack
    # (with a bare message there is no outbox row: only the ledger's unique key stands in the way)
    message = publish(broker.url, "hours.credit", signup_id=str(signup.id),
                      **({"outbox_id": job_id} if job_id is not None else {}))
    await eventually(lambda: _records(db, signup, 1))
    await asyncio.sleep(0.5)
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)

    # then the message is delivered again and runs to the end ...
    await eventually(lambda: _true(worker.count(f"hours.credit[{message}] received") >= 2
                                   and worker.count(f"hours.credit[{message}] succeeded") >= 1), within=30)
    # ... and the hours are still credited once
    records, state, attempts = await ledger(db, signup, job_id)
    assert records == 1
    if via_outbox:
        assert (state, attempts) == (JobState.DONE, 1)  # the redelivery found the job done: a no-op
    else:
        assert worker.count(f"sign-up {signup.id} already credited") == 1  # ON CONFLICT DO NOTHING


@pytest.mark.parametrize("via_outbox", [pytest.param(True, id="outbox"), pytest.param(False, id="bare-message")])
async def test_a_job_outliving_the_visibility_timeout_is_delivered_again_and_credits_once(
    db: Any, clean: None, workers: Any, broker: Broker, via_outbox: bool
) -> None:
    # given a worker whose broker visibility timeout is 1 s (checked every second) and whose jobs take 4 s,
    # with two children so a redelivered copy runs while the first is still at work
    worker = workers("slow", concurrency=2, YOUTHLINK_BROKER_VISIBILITY_TIMEOUT="1",
                     YOUTHLINK_BROKER_RESTORE_INTERVAL="1", YOUTHLINK_DEBUG_JOB_PAUSE_SECONDS="4",
                     YOUTHLINK_DEBUG_JOB_PAUSE_AT="before_commit")
    signup = await checked_out(db)
    job_id = await outbox_job(db, signup) if via_outbox else None

    # when the job is sent once
    message = publish(broker.url, "hours.credit", signup_id=str(signup.id),
                      **({"outbox_id": job_id} if job_id is not None else {}))

    # then Redis hands it out again while the first run is still going, and the copy runs concurrently
    await eventually(lambda: _true(worker.count(f"hours.credit[{message}] received") >= 2), within=20)
    await eventually(lambda: _records(db, signup, 1), within=30)
    if via_outbox:
        # the copy waited on the outbox row the first run had marked DONE, then found it done: a no-op
        await eventually(lambda: _true(worker.count(f"job {job_id} is already done") >= 1), within=30)
    else:
        # with no outbox row, the copy waited on the volunteer's lock, then its INSERT hit the sign-up's
        # unique key (ON CONFLICT DO NOTHING): the ledger's key, not timing, kept it to one
        await eventually(lambda: _true(worker.count(f"sign-up {signup.id} already credited") >= 1), within=30)
    # and the hours are credited exactly once
    records, state, attempts = await ledger(db, signup, job_id)
    assert records == 1
    if via_outbox:
        assert (state, attempts) == (JobState.DONE, 1)


@pytest.mark.parametrize("data_lost", [pytest.param(True, id="data-lost"), pytest.param(False, id="data-kept")])
async def test_a_broker_restart_loses_no_credit_and_doubles_none(
    db: Any, clean: None, services: svc.Services, workers: Any, broker: Broker, data_lost: bool
) -> None:
    # given a credit job that the outbox relay handed to the broker while no worker was running
    signup = await checked_out(db)
    job_id = await outbox_job(db, signup)
    queues = workers("declare")  # (a worker declares the queues once, then goes away)
    queues.stop()
    assert sweep(services, broker.url) == "1"
    assert broker.queued() == 1

    # when the broker restarts: killed with its files deleted (the message is lost) or cleanly (it is kept)
    if data_lost:
        broker.crash_and_lose_data()
        assert broker.queued() == 0
    else:
        broker.restart()
        assert broker.queued() == 1
    # and the relay's sweep runs again (the job is still PENDING and its last send is stale)
    await asyncio.sleep(1.2)
    assert sweep(services, broker.url) == "1"
    assert broker.queued() == (1 if data_lost else 2)  # re-sent; with the data kept, now there are two

    # then a worker credits the hours exactly once, whichever copies arrive
    workers("after-restart")
    await eventually(lambda: _done(db, signup, job_id), within=30)
    await eventually(lambda: _true(broker.queued() == 0), within=30)
    assert await ledger(db, signup, job_id) == (1, JobState.DONE, 1)


async def _true(value: bool) -> bool:
    return value


async def _records(db: Any, signup: Signup, count: int) -> bool:
    return (await ledger(db, signup))[0] >= count


async def _attempts_at_least(db: Any, signup: Signup, job_id: int, count: int) -> bool:
    attempts = (await ledger(db, signup, job_id))[2]
    return attempts is not None and attempts >= count


async def _done(db: Any, signup: Signup, job_id: int) -> bool:
    records, state, _ = await ledger(db, signup, job_id)
    return records == 1 and state is JobState.DONE
