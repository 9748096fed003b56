"""The cache of public answers: shared only where the answer is the same for everyone, emptied at every change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, make_url

from tests import factories
from tests.conftest import operation
from youthlink.api.app import create_app
from youthlink.config import get_settings
from youthlink.db.models.enums import Role
from youthlink.domain.actor import ANONYMOUS
from youthlink.graphql.ids import encode_id
from youthlink.graphql.public_cache import PublicResponseCache
from youthlink.graphql.schema import build_schema
from youthlink.runtime import database_url

OPEN_TASKS = operation("OpenTasks")
DRAFTS_TOO = "query AllTasks { tasks(first: 50) { totalCount edges { node { id title status } } } }"


class Counter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
async def cached_app() -> AsyncIterator[tuple[httpx.AsyncClient, Counter, Any]]:
    app = create_app(get_settings(), public_cache=True)
    counter = Counter()
    async with app.router.lifespan_context(app):
        cache = app.state.public_cache
        for _ in range(100):  # the listener connects in the background
            if cache.listening:
                break
            await asyncio.sleep(0.05)
        assert cache.listening
        event.listen(app.state.db.engine.sync_engine, "before_cursor_execute", counter)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as client:
            yield client, counter, cache


async def ask(client: httpx.AsyncClient, counter: Counter, query: str, token: str | None = None,
              variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
    counter.statements.clear()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    body = response.json()
    assert "errors" not in body, body
    return body["data"], len(counter.statements)


async def test_volunteers_and_visitors_share_public_answers_staff_do_not(
    cached_app: tuple[httpx.AsyncClient, Counter, Any], db: Any, clean: None
) -> None:
    client, counter, _ = cached_app
    # given an open task and a draft, a volunteer, and an admin of the organization
    admin, admin_token = await factories.admin(db)
    await factories.task(db, admin, title="公开任务")
    await factories.task(db, admin, title="草稿任务", publish=False)
    _, volunteer_token = await factories.volunteer(db)
    await asyncio.sleep(0.2)  # (the notifications of the set-up are in)

    # when the volunteer asks twice, then a visitor, then the admin
    first, computed = await ask(client, counter, DRAFTS_TOO, volunteer_token)
    again, served = await ask(client, counter, DRAFTS_TOO, volunteer_token)
    visitor, visitor_statements = await ask(client, counter, DRAFTS_TOO)
    staff, staff_statements = await ask(client, counter, DRAFTS_TOO, admin_token)

    # then the volunteer's second answer and the visitor's come from memory (only the token is checked)
    titles = [e["node"]["title"] for e in first["tasks"]["edges"]]
    assert titles == ["公开任务"] and first == again == visitor
    assert computed > 1 and served == 1 and visitor_statements == 0
    # and the admin, who may see drafts, is answered afresh, drafts included
    assert staff_statements > 1
    assert sorted(e["node"]["title"] for e in staff["tasks"]["edges"]) == ["公开任务", "草稿任务"]


async def test_a_change_by_anyone_empties_the_cache(
    cached_app: tuple[httpx.AsyncClient, Counter, Any], db: Any, clean: None
) -> None:
    client, counter, cache = cached_app
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, title="旧标题")
    await asyncio.sleep(0.2)
    before, _ = await ask(client, counter, DRAFTS_TOO)
    assert (await ask(client, counter, DRAFTS_TOO))[1] == 0

    # when another process (here: a plain connection) renames the task
    url = make_url(database_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("UPDATE tasks SET title = '新标题' WHERE id = $1", task.id)
    finally:
        await connection.close()

    # then PostgreSQL's notification empties the cache and the next answer has the new title
    for _ in range(100):
        answer, statements = await ask(client, counter, DRAFTS_TOO)
        if statements:
            break
        await asyncio.sleep(0.02)
    assert [e["node"]["title"] for e in before["tasks"]["edges"]] == ["旧标题"]
    assert [e["node"]["title"] for e in answer["tasks"]["edges"]] == ["新标题"]
    assert cache.generation > 0


async def test_a_change_made_here_empties_it_at_once(
    cached_app: tuple[httpx.AsyncClient, Counter, Any], db: Any, clean: None
) -> None:
    client, counter, cache = cached_app
    admin, admin_token = await factories.admin(db)
    await factories.task(db, admin, title="任务一")
    await asyncio.sleep(0.2)
    await ask(client, counter, DRAFTS_TOO)
    generation = cache.generation
    org_id = (await factories.organization(db)).id

    # when a mutation through this app commits
    response = await client.post("/graphql", headers={"Authorization": f"Bearer {admin_token}"}, json={
        "query": operation("CreateTask"), "variables": {"input": {
            "organizationId": encode_id("Organization", org_id), "title": "任务二", "description": "",
            "startsAt": "2030-01-01T09:00:00+08:00", "endsAt": "2030-01-01T12:00:00+08:00", "slots": 3,
            "assignmentMode": "FIRST_COME", "location": {"address": "石塘", "lat": 28.26, "lng": 121.61},
            "publish": True}}})
    assert "errors" not in response.json() and not response.json()["data"]["createTask"]["errors"]

    # then the cache was emptied before the response went out
    assert cache.generation > generation
    answer, statements = await ask(client, counter, DRAFTS_TOO)
    assert statements > 0 and answer["tasks"]["totalCount"] == 2


async def test_answers_that_depend_on_the_viewer_are_never_kept(
    cached_app: tuple[httpx.AsyncClient, Counter, Any], db: Any, clean: None
) -> None:
    client, counter, cache = cached_app
    admin, _ = await factories.admin(db, Role.ORG_ADMIN)
    await factories.task(db, admin)
    _, token = await factories.volunteer(db)
    private = "{ tasks(first: 5) { edges { node { id checkInCode signups { totalCount } } } } }"
    for query in (operation("Me"), private):
        await ask(client, counter, query, token)
        assert (await ask(client, counter, query, token))[1] > 1
    # nor anything while the cache cannot hear of changes
    await cache.stop()
    await ask(client, counter, OPEN_TASKS, token, {"first": 5})
    assert (await ask(client, counter, OPEN_TASKS, token, {"first": 5}))[1] > 1


async def test_a_document_over_the_token_limit_is_refused_before_the_cache_reads_it(
    cached_app: tuple[httpx.AsyncClient, Counter, Any]
) -> None:
    client, _, cache = cached_app
    # given an anonymous request of nearly a megabyte (under the body limit), every field of it public
    huge = "{ tasks { edges { node { " + "title " * 160_000 + "} } } }"
    assert len(huge) < get_settings().max_request_bytes

    # when it is sent
    started = time.perf_counter()
    response = await client.post("/graphql", json={"query": huge})
    elapsed = time.perf_counter() - started

    # then the token limit refuses it as without the cache: the cache's own parse stops at the limit too
    # (a full parse and walk of it took about 3 s of the event loop, per distinct text, for anyone)
    assert "errors" in response.json()
    assert elapsed < 1.0, elapsed
    assert cache.key(huge, None, None, ANONYMOUS) is None


async def test_the_listener_reconnects_and_nothing_is_kept_meanwhile(
    cached_app: tuple[httpx.AsyncClient, Counter, Any], db: Any, clean: None
) -> None:
    client, counter, cache = cached_app
    admin, _ = await factories.admin(db)
    task = await factories.task(db, admin, title="旧标题")
    await asyncio.sleep(0.2)
    await ask(client, counter, DRAFTS_TOO)
    assert (await ask(client, counter, DRAFTS_TOO))[1] == 0
    url = make_url(database_url()).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(url)
    try:
        # when PostgreSQL ends the listening connection, and the task changes before it is back
        await connection.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'youthlink-cache'")
        for _ in range(50):
            if not cache.listening:
                break
            await asyncio.sleep(0.02)
        await connection.execute("UPDATE tasks SET title = '新标题' WHERE id = $1", task.id)

        # then nothing is served from memory meanwhile
        answer, statements = await ask(client, counter, DRAFTS_TOO)
        assert statements > 0 and answer["tasks"]["edges"][0]["node"]["title"] == "新标题"
        # and once it listens again, answers are kept and emptied by the next change as before
        for _ in range(100):
            if cache.listening:
                break
            await asyncio.sleep(0.05)
        assert cache.listening
        await ask(client, counter, DRAFTS_TOO)
        assert (await ask(client, counter, DRAFTS_TOO))[1] == 0
        await connection.execute("UPDATE tasks SET title = '第三个标题' WHERE id = $1", task.id)
        for _ in range(100):
            answer, statements = await ask(client, counter, DRAFTS_TOO)
            if statements:
                break
            await asyncio.sleep(0.02)
        assert answer["tasks"]["edges"][0]["node"]["title"] == "第三个标题"
    finally:
        await connection.close()


def test_only_documents_of_a_client_s_size_are_kept() -> None:
    # Comments are not tokens: a document of nearly a megabyte passes the token limit. Kept as a key (in the
    # answers and the documents, 1,024 of each), such texts would hold about a gigabyte of memory.
    cache = PublicResponseCache(build_schema(get_settings())._schema,
                                max_tokens=get_settings().graphql_max_tokens)
    cache.listening = True
    towns = "{ towns { id name } }"
    padded = towns + ("\n#" + "x" * 1000) * 900
    assert cache.key(towns, None, None, ANONYMOUS) is not None
    assert cache.key(padded, None, None, ANONYMOUS) is None
    assert not cache._documents.keys() - {(towns, None)}
