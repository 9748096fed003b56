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
