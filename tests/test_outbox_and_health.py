"""Jobs survive a broker outage (the outbox), failing jobs are parked, and /health tells the truth."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests import factories
from tests import services as svc
from tests.conftest import GraphQL, operation
from tests.test_loop_end_to_end import eventually
from youthlink.db.models import OutboxJob, Signup
from youthlink.db.models.enums import AssignmentMode, JobState, SignupStatus
from youthlink.domain import outbox
from youthlink.graphql.ids import encode_id
from youthlink.workers import relay

DEAD_BROKER = "redis://127.0.0.1:1/0"


@pytest.fixture(scope="module")
def api_without_broker(services: svc.Services, worker: Any) -> str:
    return svc.start_api(services, name="api-dead-broker", YOUTHLINK_BROKER_URL=DEAD_BROKER)


async def test_a_broker_outage_loses_no_job(gql: GraphQL, db: Any, api_without_broker: str, clean: None) -> None:
    # given a MATCHED task with two applications, and an API whose broker is down
    admin, admin_token = await factories.admin(db)
    task = await factories.task(db, admin, slots=1, mode=AssignmentMode.MATCHED)
    for _, token in await factories.many_volunteers(db, 2):
        await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)

    # when the organization requests matching through that API
    async with httpx.AsyncClient(base_url=api_without_broker, timeout=30) as client:
        response = await client.post("/graphql", headers={"Authorization": f"Bearer {admin_token}"}, json={
            "query": operation("RequestMatching"), "variables": {"taskId": encode_id("Task", task.id)}})

    # then the user sees success, and the job waits in the outbox
    assert response.json()["data"]["requestMatching"]["errors"] == []
    async with db.read() as session:
        job = await session.scalar(select(OutboxJob).where(OutboxJob.name == "matching.run_batch"))
    assert job is not None and job.state is JobState.PENDING and job.sent_at is None

    # when the relay's sweep runs (as beat does every few seconds) with the broker back,
    # then the worker runs it: applications decided, job done
    async def done() -> Any:
        await relay.send(db, None)
        async with db.read() as session:
            state = await session.scalar(select(OutboxJob.state).where(OutboxJob.id == job.id))
            statuses = (await session.scalars(select(Signup.status).where(Signup.task_id == task.id))).all()
        return state is JobState.DONE and sorted(statuses) == [SignupStatus.CONFIRMED, SignupStatus.WAITLISTED]

    await eventually(done)


async def test_a_job_that_keeps_failing_is_parked_not_looped(db: Any, worker: Any, clean: None) -> None:
    # given a job whose arguments can never work
    async with db.unit_of_work() as session:
        job_id = await outbox.record_job(session, "hours.credit", signup_id="not-a-uuid")

    # when it is sent again each time it fails (the sweep; its clock is skipped forward here)
    async def state() -> JobState:
        async with db.read() as session:
            value = await session.scalar(select(OutboxJob.state).where(OutboxJob.id == job_id))
            assert value is not None
            return value

    for _ in range(10):
        if await state() is JobState.PARKED:
            break
        async with db.unit_of_work() as session:
            await session.execute(update(OutboxJob).where(OutboxJob.id == job_id).values(sent_at=None))
        await relay.send(db, None)

        await asyncio.sleep(1.5)

    # then it is parked after the configured number of attempts, with the reason
    async with db.read() as session:
        job = await session.get(OutboxJob, job_id)
    assert job is not None and job.state is JobState.PARKED and "parked" in (job.last_error or "")


async def test_health_reports_database_broker_and_workers(http: httpx.AsyncClient) -> None:
    response = await http.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"] == "ok" and body["broker"] == "ok" and body["workers"].startswith("ok")


async def test_health_is_503_when_the_broker_is_down(api_without_broker: str) -> None:
    async with httpx.AsyncClient(base_url=api_without_broker, timeout=30) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["database"] == "ok" and body["broker"].startswith("down")
