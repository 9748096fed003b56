"""REST downloads of the monthly and quarterly reports: GET /reports/2026-10.xlsx, /reports/2026-Q3.csv."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from youthlink.api import deps
from youthlink.domain import reports
from youthlink.errors import NotFound

router = APIRouter(prefix="/reports")
FORMATS = {
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}


@router.get("/{period}.{fmt}")
async def download(period: str, fmt: str, request: Request) -> Response:
    """City admins get the city's report, organization admins their organizations' (with their children)."""
    if fmt not in FORMATS:
        raise NotFound("NOT_FOUND", "未知的报表格式", "format")
    actor = await deps.actor(request)
    async with deps.database(request).read() as session:
        report = await reports.build(session, actor, period)
    content = reports.to_xlsx(report) if fmt == "xlsx" else reports.to_csv(report)
    return Response(content, media_type=FORMATS[fmt], headers={
        "Content-Disposition": f'attachment; filename="{report.filename_stem}.{fmt}"',
        "Cache-Control": "private, no-store"})
