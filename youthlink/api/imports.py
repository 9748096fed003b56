"""REST routes for spreadsheet imports: the file is the request body (XLSX or CSV), the report comes back as
JSON, and each upload's error list can be downloaded again as CSV."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from youthlink.db.models import HoursImport, VolunteerImport
from youthlink.db.uow import Database
from youthlink.domain import import_batches, imports_hours, imports_volunteers
from youthlink.domain.actor import Actor
from youthlink.domain.spreadsheets import errors_csv
from youthlink.graphql.ids import decode_id

router = APIRouter(prefix="/imports")
KINDS: dict[str, type[HoursImport] | type[VolunteerImport]] = {
    "service-hours": HoursImport, "volunteers": VolunteerImport}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _actor(request: Request) -> Actor:
    from youthlink.api.app import actor_for  # the app module includes this router: import at call time

    return await actor_for(request)


def _id(value: str, type_name: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return decode_id(value, type_name, field)


def _summary(batch: HoursImport | VolunteerImport, kind: str) -> dict[str, Any]:
    return {"importId": str(batch.id), "rowsTotal": batch.rows_total, "rowsImported": batch.rows_imported,
            "rowsDuplicate": batch.rows_duplicate, "rowsFailed": batch.rows_failed, "errors": batch.errors,
            "errorReport": f"/imports/{kind}/{batch.id}/errors.csv"}


OrganizationId = Annotated[str, Query(alias="organizationId", description="The organization importing")]
Filename = Annotated[str, Query(description="The uploaded file's name (.xlsx or .csv)")]


@router.post("/volunteers")
async def import_volunteers(request: Request, organization_id: OrganizationId, filename: Filename) -> JSONResponse:
    """Volunteers and team memberships, keyed by phone; idempotent on re-import."""
    actor = await _actor(request)
    content = await request.body()
    org_id = _id(organization_id, "Organization", "organizationId")
    async with _db(request).unit_of_work() as session:
        report = await imports_volunteers.import_volunteers(session, actor, org_id, filename, content)
        body = {**_summary(report.batch, "volunteers"), "volunteersCreated": report.created,
                "membershipsAdded": report.memberships_added}
    return JSONResponse(body)


@router.post("/service-hours")
async def import_service_hours(request: Request, organization_id: OrganizationId, filename: Filename) -> JSONResponse:
    """Historical hours as PENDING records for approval; idempotent on re-import."""
    actor = await _actor(request)
    content = await request.body()
    org_id = _id(organization_id, "Organization", "organizationId")
    async with _db(request).unit_of_work() as session:
        report = await imports_hours.import_hours(session, actor, org_id, filename, content)
        body = _summary(report.batch, "service-hours")
    return JSONResponse(body)


@router.get("/{kind}/{import_id}/errors.csv")
async def error_report(kind: str, import_id: str, request: Request) -> Response:
    model = KINDS.get(kind)
    if model is None:
        return JSONResponse({"code": "NOT_FOUND", "message": "未知的导入类型"}, status_code=404)
    actor = await _actor(request)
    async with _db(request).read() as session:
        batch = await import_batches.visible_batch(session, actor, model, _id(import_id, "Import", "importId"))
    return Response(errors_csv(batch.errors), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="import-{batch.id}-errors.csv"',
        "Cache-Control": "private, no-store"})
