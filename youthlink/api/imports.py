"""REST routes for spreadsheet imports: the file is the request body (XLSX or CSV), the report comes back as
JSON, and each upload's error list can be downloaded again as CSV."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from youthlink.api import deps
from youthlink.db.models import HoursImport, VolunteerImport
from youthlink.domain import import_batches, imports_hours, imports_volunteers
from youthlink.domain.actor import Actor
from youthlink.domain.spreadsheets import errors_csv

router = APIRouter(prefix="/imports")
KINDS: dict[str, type[HoursImport] | type[VolunteerImport]] = {
    "service-hours": HoursImport, "volunteers": VolunteerImport}
OrganizationId = Annotated[str, Query(alias="organizationId", description="The organization importing")]
Filename = Annotated[str, Query(description="The uploaded file's name (.xlsx or .csv)")]
# Runs one importer; returns the batch and any figures particular to that importer.
Importer = Callable[[AsyncSession, Actor, uuid.UUID, str, bytes],
                    Awaitable[tuple[HoursImport | VolunteerImport, dict[str, Any]]]]


async def _run(request: Request, kind: str, organization_id: str, filename: str, importer: Importer) -> JSONResponse:
    actor = await deps.actor(request)
    content = await request.body()
    org_id = deps.entity_id(organization_id, "Organization", "organizationId")
    async with deps.database(request).unit_of_work() as session:
        batch, extra = await importer(session, actor, org_id, filename, content)
        body = {"importId": str(batch.id), "rowsTotal": batch.rows_total, "rowsImported": batch.rows_imported,
                "rowsDuplicate": batch.rows_duplicate, "rowsFailed": batch.rows_failed, "errors": batch.errors,
                "errorReport": f"/imports/{kind}/{batch.id}/errors.csv", **extra}
    return JSONResponse(body)


async def _volunteers(session: AsyncSession, actor: Actor, org_id: uuid.UUID, filename: str, content: bytes
                      ) -> tuple[VolunteerImport, dict[str, Any]]:
    report = await imports_volunteers.import_volunteers(session, actor, org_id, filename, content)
    return report.batch, {"volunteersCreated": report.created, "membershipsAdded": report.memberships_added}


async def _hours(session: AsyncSession, actor: Actor, org_id: uuid.UUID, filename: str, content: bytes
                 ) -> tuple[HoursImport, dict[str, Any]]:
    report = await imports_hours.import_hours(session, actor, org_id, filename, content)
    return report.batch, {}


@router.post("/volunteers")
async def import_volunteers(request: Request, organization_id: OrganizationId, filename: Filename) -> JSONResponse:
    """Volunteers and team memberships, keyed by phone; idempotent on re-import."""
    return await _run(request, "volunteers", organization_id, filename, _volunteers)


@router.post("/service-hours")
async def import_service_hours(request: Request, organization_id: OrganizationId, filename: Filename) -> JSONResponse:
    """Historical hours as PENDING records for approval; idempotent on re-import."""
    return await _run(request, "service-hours", organization_id, filename, _hours)


@router.get("/{kind}/{import_id}/errors.csv")
async def error_report(kind: str, import_id: str, request: Request) -> Response:
    model = KINDS.get(kind)
    if model is None:
        return JSONResponse({"code": "NOT_FOUND", "message": "未知的导入类型"}, status_code=404)
    actor = await deps.actor(request)
    batch_id = deps.entity_id(import_id, "Import", "importId")
    async with deps.database(request).read() as session:
        batch = await import_batches.visible_batch(session, actor, model, batch_id)
    return Response(errors_csv(batch.errors), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="import-{batch.id}-errors.csv"',
        "Cache-Control": "private, no-store"})
