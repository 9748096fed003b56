"""Test fixtures: real PostgreSQL, a real broker, a real Celery worker and the real HTTP app."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import OperationDefinitionNode, parse, print_ast

from tests import services as svc

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
# Loaded once per run from the reference data file; everything else is truncated by `clean`.
REFERENCE_TABLES = {"towns", "organizations", "projects", "project_partners"}
_services: svc.Services | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _services
    if getattr(config, "workerinput", None) is not None or _services is not None:
        return
    os.environ["YOUTHLINK_SECRET_KEY"] = "test-secret-key-not-for-production-use"
    _services = svc.start()
    for key, value in _services.env().items():
        if key.startswith("YOUTHLINK_"):
            os.environ[key] = value
    from youthlink.config import get_settings

    get_settings.cache_clear()
    svc.migrate(_services)
    asyncio.run(_load_reference())


def pytest_unconfigure(config: pytest.Config) -> None:
    if _services is not None:
        svc.stop(_services)


async def _load_reference() -> None:
    from youthlink.config import get_settings
    from youthlink.db.engine import make_engine
    from youthlink.db.seed import load_reference
    from youthlink.db.uow import Database

    assert _services is not None
    db = Database(make_engine(_services.database_url, get_settings(), pool_size=1))
    async with db.unit_of_work() as session:
        await load_reference(session)
    await db.dispose()


@pytest.fixture(scope="session")
def services() -> svc.Services:
    assert _services is not None
    return _services


@pytest.fixture(scope="session")
def worker(services: svc.Services) -> Any:
    return svc.start_worker(services)


@pytest.fixture(scope="session")
def api(services: svc.Services, worker: Any) -> str:
    return svc.start_api(services)


@pytest.fixture(scope="session")
async def db(services: svc.Services) -> AsyncIterator[Any]:
    from youthlink.config import get_settings
    from youthlink.db.engine import make_engine
    from youthlink.db.uow import Database
    from youthlink.workers.relay import relay_inline

    database = Database(make_engine(services.database_url, get_settings(), pool_size=5))
    database.relay = relay_inline(database)
    yield database
    await database.dispose()


def operation(name: str) -> str:
    """One named operation from the client files, exactly as the client sends it."""
    for path in sorted(CLIENTS.glob("*.graphql")):
        for definition in parse(path.read_text()).definitions:
            if isinstance(definition, OperationDefinitionNode) and definition.name and definition.name.value == name:
                return print_ast(definition)
    raise KeyError(name)


GraphQL = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture(scope="session")
async def http(api: str) -> AsyncIterator[httpx.AsyncClient]:
    # Idle connections expire here before uvicorn closes them (its keep-alive is 5 s, as httpx's default):
    # at equal timeouts a request can go out on a connection the server is closing (httpx.ReadError).
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=api, timeout=60, limits=limits) as client:
        yield client


@pytest.fixture(scope="session")
def gql(http: httpx.AsyncClient) -> GraphQL:
    async def call(query: str, variables: dict[str, Any] | None = None, token: str | None = None,
                   expect_errors: bool = False) -> dict[str, Any]:
        text = operation(query) if query.isidentifier() else query
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await http.post("/graphql", json={"query": text, "variables": variables or {}}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if not expect_errors:
            assert "errors" not in body, body["errors"]
        return body

    return call


@pytest.fixture
async def clean(db: Any) -> AsyncIterator[None]:
    """Committed data is removed after the test (reference data stays)."""
    yield
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from youthlink.db.base import Base

    tables = ", ".join(name for name in Base.metadata.tables if name not in REFERENCE_TABLES)
    # A job the test caused (a statistics refresh, say) may still be running in the worker: the TRUNCATE can
    # deadlock with it, and PostgreSQL then cancels one of the two. The job is retried by the outbox (and finds
    # its row gone); the TRUNCATE is retried here.
    for attempt in range(10):
        try:
            async with db.unit_of_work() as session:
                await session.execute(text(f"TRUNCATE {tables} CASCADE"))
            return
        except DBAPIError as exc:
            if "deadlock" not in str(exc) or attempt == 9:
                raise
            await asyncio.sleep(0.2)


def pytest_report_header(config: pytest.Config) -> str:
    if _services is None:
        return ""
    where = "embedded" if _services.embedded_pg else "configured servers"
    return f"youthlink test services ({where}): database {_services.database}, logs in {_services.folder}"
