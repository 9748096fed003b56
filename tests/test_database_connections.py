"""Connections PostgreSQL dropped (a restart, a failover, an idle timeout) cost no request."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

from tests import factories
from tests import services as svc
from tests.conftest import GraphQL
from youthlink.db.engine import PING_AFTER_IDLE_SECONDS
from youthlink.db.models.enums import Role
from youthlink.graphql.ids import encode_id

TOWNS = "{ towns { name } }"


def libpq(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _terminate_api_connections(services: svc.Services) -> int:
    admin = await asyncpg.connect(services.admin_dsn)
    try:
        return len(await admin.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
            services.database, "youthlink-api"))
    finally:
        await admin.close()


async def test_requests_succeed_after_postgresql_dropped_the_pools_connections(
        services: svc.Services, http: httpx.AsyncClient, gql: GraphQL, db: Any, clean: None) -> None:
    # given an API whose pool holds several connections (concurrent requests opened them)
    admin, _ = await factories.admin(db, Role.CITY_ADMIN, None)
    task = await factories.task(db, admin, slots=5)
    _, token = (await factories.many_volunteers(db, 1))[0]
    answers = await asyncio.gather(*[http.post("/graphql", json={"query": TOWNS}) for _ in range(8)])
    assert all(a.status_code == 200 and "errors" not in a.json() for a in answers)

    # when PostgreSQL ends every one of them while they sit idle in the pool
    assert await _terminate_api_connections(services) >= 1
    await asyncio.sleep(PING_AFTER_IDLE_SECONDS + 0.5)

    # then the next requests, reads and a write, succeed on new connections
    answers = await asyncio.gather(*[http.post("/graphql", json={"query": TOWNS}) for _ in range(8)])
    assert [a.status_code for a in answers] == [200] * 8
    assert all("errors" not in a.json() and a.json()["data"]["towns"] for a in answers)
    signed = await gql("SignUp", {"taskId": encode_id("Task", task.id)}, token=token)
    assert signed["data"]["signUp"]["signup"]["status"] == "CONFIRMED"


async def test_a_connection_lost_mid_statement_answers_503_and_the_next_request_works(
        services: svc.Services, http: httpx.AsyncClient, db: Any, clean: None) -> None:
    # given a request whose statement waits on a lock another session holds on the table it reads
    locker = await asyncpg.connect(libpq(services.database_url))
    admin = await asyncpg.connect(services.admin_dsn)
    try:
        transaction = locker.transaction()
        await transaction.start()
        await locker.execute("LOCK TABLE towns IN ACCESS EXCLUSIVE MODE")
        request = asyncio.create_task(http.post("/graphql", json={"query": TOWNS}))
        waiting = None
        for _ in range(200):
            waiting = await admin.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'youthlink-api' "
                "AND wait_event_type = 'Lock'", services.database)
            if waiting:
                break
            await asyncio.sleep(0.05)
        assert waiting, "the request never reached its statement"

        # when PostgreSQL ends that connection mid-statement (as a restart or a failover does)
        await admin.execute("SELECT pg_terminate_backend($1)", waiting)
        response = await request

        # then the client is told to retry (503, Retry-After), not shown an internal error
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.json()["code"] == "SERVICE_UNAVAILABLE"
        await transaction.rollback()
    finally:
        await locker.close()
        await admin.close()

    # and the next request is answered on a new connection
    answer = await http.post("/graphql", json={"query": TOWNS})
    assert answer.status_code == 200 and answer.json()["data"]["towns"]
