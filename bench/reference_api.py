"""The reference for the API benchmark: the same SQL as the GraphQL app runs for OpenTasks and Me, on bare
asyncpg, answering the same JSON with orjson. What it costs is what the database and HTTP cost; what the
GraphQL app costs on top is the price of the framework.

Run: uvicorn bench.reference_api:app (YOUTHLINK_DATABASE_URL and YOUTHLINK_SECRET_KEY set).
"""

from __future__ import annotations

import base64
import math
import os
import uuid
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

ZONE = ZoneInfo("Asia/Shanghai")
EARTH_RADIUS_KM = 6371.0088
pool: asyncpg.Pool | None = None

# The actor: the account and its grants in one statement (youthlink.domain.accounts.load_actor).
ACTOR = ("SELECT a.volunteer_id, a.token_version, g.role, g.organization_id, g.team_id FROM accounts a "
         "LEFT OUTER JOIN role_grants g ON g.account_id = a.id WHERE a.id = $1")
HAVERSINE = ("2 * 6371.0088 * asin(least(1.0, sqrt(power(sin(radians(lat - $1) / 2), 2) + cos(radians($1)) * "
             "cos(radians(lat)) * power(sin(radians(lng - $2) / 2), 2))))")
# The statuses are inline, as the app sends them (youthlink.domain.tasks: the partial index on open tasks).
TASK_FILTER = ("status <> 'DRAFT' AND status IN ({statuses}) AND lat BETWEEN $4 AND $5 AND lng BETWEEN $6 AND $7 "
               f"AND {HAVERSINE} <= $3 AND required_skills <@ $8::varchar[] AND starts_at >= $9")
# A first page counts every match in the same statement, as the app does (count(*) OVER () before the LIMIT).
OPEN_TASKS = ("SELECT id, title, starts_at, ends_at, slots, filled_slots, status, assignment_mode, required_skills, "
              f"address, lat, lng, town_id, organization_id, project_id, {HAVERSINE} AS distance_km, "
              f"count(*) OVER () AS total_count FROM tasks WHERE {TASK_FILTER} ORDER BY starts_at, id LIMIT $10")
STATUSES = {"DRAFT", "OPEN", "CLOSED", "COMPLETED", "CANCELLED"}
NAMES = {table: f"SELECT id, name FROM {table} WHERE id = ANY($1::uuid[])"
         for table in ("towns", "organizations", "projects")}
VOLUNTEER = "SELECT id, name, phone, total_hours FROM volunteers WHERE id = $1"
SIGNUPS = ("SELECT s.id, s.status, s.task_id, s.applied_at, count(*) OVER () AS total_count FROM signups s "
           "JOIN tasks t ON t.id = s.task_id WHERE s.volunteer_id = $1 ORDER BY s.applied_at DESC, s.id DESC LIMIT $2")
RECORDS = ("SELECT r.id, r.hours, r.status, r.approved_at, r.task_id, r.started_at, count(*) OVER () AS total_count "
           "FROM service_records r LEFT OUTER JOIN tasks t ON t.id = r.task_id WHERE r.volunteer_id = $1 "
           "ORDER BY r.started_at DESC, r.id DESC LIMIT $2")
TASK_TITLES = "SELECT id, title, starts_at FROM tasks WHERE id = ANY($1::uuid[]) AND status <> 'DRAFT'"
STARS = (100, 300, 600, 1000, 1500)


def gid(kind: str, value: uuid.UUID) -> str:
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def local(value: datetime | None) -> str | None:
    return value.astimezone(ZONE).isoformat() if value is not None else None


def cursor(*values: Any) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else str(v) for v in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode()


async def actor(conn: asyncpg.Connection, request: Request) -> asyncpg.Record:
    token = request.headers["authorization"].split(" ", 1)[1]
    claims = jwt.decode(token, os.environ["YOUTHLINK_SECRET_KEY"], algorithms=["HS256"])
    rows = await conn.fetch(ACTOR, uuid.UUID(claims["sub"]))
    assert rows and rows[0]["token_version"] == claims["ver"]
    return rows[0]


async def open_tasks(request: Request) -> Response:
    body = orjson.loads(await request.body())
    near = body["near"]
    lat, lng, radius = near["lat"], near["lng"], near["radiusKm"]
    dlat = math.degrees(radius / EARTH_RADIUS_KM)
    dlng = dlat / math.cos(math.radians(lat))
    first = body["first"]
    assert set(body["status"]) <= STATUSES
    statuses = ", ".join(f"'{s}'" for s in body["status"])
    args = (lat, lng, radius, lat - dlat, lat + dlat, lng - dlng, lng + dlng, body["skills"],
            datetime.fromisoformat(body["startsAfter"]))
    assert pool is not None
    async with pool.acquire() as conn:
        await actor(conn, request)
        rows = await conn.fetch(OPEN_TASKS.format(statuses=statuses), *args, first + 1)
        total = rows[0]["total_count"] if rows else 0
        shown = rows[:first]
        lookups = {}
        for table, kind, column in (("towns", "Town", "town_id"), ("organizations", "Organization", "organization_id"),
                                    ("projects", "Project", "project_id")):
            ids = list({r[column] for r in shown if r[column] is not None})
            found = await conn.fetch(NAMES[table], ids) if ids else []
            lookups[column] = {r["id"]: {"id": gid(kind, r["id"]), "name": r["name"]} for r in found}
    edges = [{
        "cursor": cursor(r["starts_at"], r["id"]),
        "node": {
            "id": gid("Task", r["id"]), "title": r["title"], "startsAt": local(r["starts_at"]),
            "endsAt": local(r["ends_at"]), "slots": r["slots"], "filledSlots": r["filled_slots"],
            "status": r["status"], "assignmentMode": r["assignment_mode"], "requiredSkills": r["required_skills"],
            "location": {"address": r["address"], "lat": r["lat"], "lng": r["lng"]},
            "distanceKm": round(r["distance_km"], 3),
            "town": lookups["town_id"].get(r["town_id"]),
            "organization": lookups["organization_id"].get(r["organization_id"]),
            "project": lookups["project_id"].get(r["project_id"]),
        },
    } for r in shown]
    data = {"tasks": {"totalCount": total, "pageInfo": {"hasNextPage": len(rows) > first,
                                                          "endCursor": edges[-1]["cursor"] if edges else None},
                      "edges": edges}}
    return Response(orjson.dumps({"data": data}), media_type="application/json")


async def me(request: Request) -> Response:
    assert pool is not None
    async with pool.acquire() as conn:
        account = await actor(conn, request)
        volunteer = await conn.fetchrow(VOLUNTEER, account["volunteer_id"])
        signups = await conn.fetch(SIGNUPS, volunteer["id"], 51)
        signup_total = signups[0]["total_count"] if signups else 0
        records = await conn.fetch(RECORDS, volunteer["id"], 51)
        record_total = records[0]["total_count"] if records else 0
        task_ids = list({r["task_id"] for r in [*signups[:50], *records[:50]] if r["task_id"] is not None})
        tasks = {r["id"]: r for r in await conn.fetch(TASK_TITLES, task_ids)}
    total = float(volunteer["total_hours"])
    data = {"viewer": {"volunteer": {
        "id": gid("Volunteer", volunteer["id"]), "name": volunteer["name"], "phone": volunteer["phone"],
        "totalHours": total, "starLevel": sum(1 for s in STARS if total >= s),
        "signups": {"totalCount": signup_total, "edges": [{"node": {
            "id": gid("Signup", s["id"]), "status": s["status"],
            "task": {"id": gid("Task", s["task_id"]), "title": tasks[s["task_id"]]["title"],
                     "startsAt": local(tasks[s["task_id"]]["starts_at"])}}} for s in signups[:50]]},
        "serviceRecords": {"totalCount": record_total, "edges": [{"node": {
            "id": gid("ServiceRecord", r["id"]), "hours": float(r["hours"]), "status": r["status"],
            "approvedAt": local(r["approved_at"]),
            "task": {"id": gid("Task", r["task_id"]), "title": tasks[r["task_id"]]["title"]}
            if r["task_id"] in tasks else None}} for r in records[:50]]},
    }}}
    return Response(orjson.dumps({"data": data}), media_type="application/json")


@asynccontextmanager
async def lifespan(_: Starlette) -> Any:
    global pool
    url = os.environ["YOUTHLINK_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(url, min_size=10, max_size=30)
    yield
    await pool.close()


app = Starlette(routes=[Route("/open-tasks", open_tasks, methods=["POST"]), Route("/me", me)], lifespan=lifespan)
