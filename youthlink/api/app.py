"""The FastAPI app: lifespan (one engine per process), /health, /graphql, /dashboard, and the error mapping."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from strawberry.fastapi import GraphQLRouter

from youthlink.api.certificates import router as certificates_router
from youthlink.api.dashboard import router as dashboard_router
from youthlink.api.dashboard import static_files
from youthlink.api.imports import router as imports_router
from youthlink.api.limits import BodySizeLimit
from youthlink.api.reports import router as reports_router
from youthlink.config import Settings, get_settings
from youthlink.db.engine import make_engine
from youthlink.db.uow import Database, RequestReads
from youthlink.domain import accounts
from youthlink.domain.actor import ANONYMOUS, Actor
from youthlink.domain.personal_data import install_log_redaction
from youthlink.domain.throttle import LoginThrottle
from youthlink.errors import DomainError, Unauthenticated
from youthlink.graphql.context import Context
from youthlink.graphql.public_cache import PublicResponseCache
from youthlink.graphql.schema import build_schema
from youthlink.runtime import broker_url, database_url, redis_url
from youthlink.workers.relay import drain, relay_in_background

log = logging.getLogger(__name__)
STATUS_BY_KIND = {"NOT_FOUND": 404, "FORBIDDEN": 403, "UNAUTHENTICATED": 401, "CONFLICT": 409, "INVALID": 422}


def _database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def actor_for(request: Request, reads: RequestReads | None = None) -> Actor:
    header = request.headers.get("authorization", "")
    if not header:
        return ANONYMOUS
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return ANONYMOUS
    async with reads.session() if reads is not None else _database(request).read() as session:
        try:
            return await accounts.actor_from_token(session, token.strip())
        except Unauthenticated:
            # An expired or revoked token is treated as no login: protected fields then say UNAUTHENTICATED.
            return ANONYMOUS


async def graphql_context(request: Request) -> AsyncIterator[Context]:
    """The request's context; its read session (the actor's statement first) goes back to the pool at the end."""
    db = _database(request)
    reads = RequestReads(db)
    try:
        client = request.client.host if request.client else ""
        yield Context(db=db, actor=await actor_for(request, reads), client_address=client,
                      throttle=request.app.state.throttle, shared_reads=reads)
    finally:
        await reads.close()


async def check_health(app: FastAPI) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {}
    db: Database = app.state.db
    try:
        async with db.read() as session:
            await asyncio.wait_for(session.execute(text("SELECT 1")), timeout=3)
        report["database"] = "ok"
    except Exception as exc:
        report["database"] = f"down: {type(exc).__name__}"

    def ping_broker_and_workers() -> tuple[str, str]:
        from youthlink.workers.app import app as celery_app

        if broker_url() is None:
            return "down: not configured", "down: no broker"
        try:
            with celery_app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
        except Exception as exc:
            return f"down: {type(exc).__name__}", "unknown"
        replies = celery_app.control.ping(timeout=1.0)
        return "ok", f"ok ({len(replies)})" if replies else "down: no worker answered"

    broker, workers = await asyncio.get_running_loop().run_in_executor(None, ping_broker_and_workers)
    report["broker"], report["workers"] = broker, workers
    healthy = all(str(v).startswith("ok") for v in report.values())
    return healthy, report


class OrjsonGraphQLRouter(GraphQLRouter[Context, None]):
    """Responses encoded with orjson (UTF-8, no escaping of Chinese text): about 10x faster than json.dumps."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


def create_app(settings: Settings | None = None, *, public_cache: bool | None = None) -> FastAPI:
    """The app. `public_cache`: keep public answers for a few seconds (graphql.public_cache); by default on,
    except in tests, which write and read back within milliseconds (tests/test_public_cache.py turns it on)."""
    settings = settings or get_settings()
    schema = build_schema(settings)
    cache = PublicResponseCache(schema._schema, max_tokens=settings.graphql_max_tokens) if (
        public_cache if public_cache is not None else settings.env != "test") else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url(), settings, role="api")
        db = Database(engine)
        db.relay = relay_in_background(db)
        app.state.db = db
        if cache is not None:
            # Changes made here empty the cache at once; PostgreSQL's notifications tell it of everyone else's.
            db.commit_listeners.append(cache.invalidate)
            await cache.start(database_url())
            schema.public_cache = app.state.public_cache = cache
        throttle_redis = aioredis.from_url(url) if (url := redis_url()) else None
        if throttle_redis is None:
            log.warning("no Redis configured (YOUTHLINK_REDIS_URL): login attempts are not throttled")
        app.state.throttle = LoginThrottle(throttle_redis) if throttle_redis is not None else None
        install_log_redaction()
        # Objects made at start-up live for the whole process: keep them out of every collection.
        gc.collect()
        gc.freeze()
        # A GraphQL request allocates tens of thousands of objects, nearly all freed by reference counting.
        # At the default threshold (700) the young generation was collected several times per request and
        # everything the other requests in flight held was promoted, then walked again by full collections
        # (with the start-up heap frozen, the "25% more long-lived objects" rule is met all the time): 5-9 ms
        # of collector per request at 32 clients. Collecting every 50,000 allocations costs about 1 ms.
        gc.set_threshold(50_000, 20, 20)
        yield
        if cache is not None:
            schema.public_cache = None
            await cache.stop()
        await drain()
        if throttle_redis is not None:
            await throttle_redis.aclose()
        await db.dispose()

    app = FastAPI(title="Youthlink", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodySizeLimit, settings=settings)
    graphql_app: GraphQLRouter[Context, None] = OrjsonGraphQLRouter(
        schema,
        context_getter=graphql_context,  # type: ignore[arg-type]  # a FastAPI dependency: it closes what it opens
        graphql_ide="graphiql" if settings.env != "production" else None,
        allow_queries_via_get=True,
        multipart_uploads_enabled=False,
    )
    app.include_router(graphql_app, prefix="/graphql")
    app.include_router(certificates_router)
    app.include_router(imports_router)
    app.include_router(reports_router)
    app.include_router(dashboard_router)
    app.mount("/static", static_files(), name="static")

    @app.get("/health")
    async def health(request: Request) -> JSONResponse:
        healthy, report = await check_health(request.app)
        return JSONResponse(report, status_code=200 if healthy else 503)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "message": exc.message, "field": exc.field},
                            status_code=STATUS_BY_KIND.get(exc.kind, 400))

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def database_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse({"code": "SERVICE_UNAVAILABLE", "message": "数据库暂不可用，请稍后重试"}, status_code=503,
                            headers={"Retry-After": "5"})

    return app


app = create_app()
