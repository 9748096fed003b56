"""REST routes of the ledger: certificate PDFs and the public verification page.

Thin: decode, open a session or unit of work, call one domain service; DomainErrors are mapped to HTTP
statuses by the app's handler.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from youthlink.api import deps
from youthlink.domain import certificates

router = APIRouter()


@router.get("/certificates/{certificate_id}.pdf")
async def certificate_pdf(certificate_id: str, request: Request) -> Response:
    actor = await deps.actor(request)
    async with deps.database(request).read() as session:
        certificate = await certificates.visible_certificate(
            session, actor, deps.entity_id(certificate_id, "Certificate", "certificateId"))
    pdf = certificates.render_pdf(certificate)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="certificate-{certificate.number}.pdf"',
        "Cache-Control": "private, no-store",
    })


PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>志愿服务证明查验</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto; line-height: 1.6">
<h1>志愿服务证明查验</h1>
{body}
</body></html>
"""


@router.get("/verify/{code}", response_class=HTMLResponse)
async def verify(code: str, request: Request) -> HTMLResponse:
    """Public, no login: what the certificate with this code states (masked name), or that it was revoked."""
    async with deps.database(request).read() as session:
        found = await certificates.verify(session, code)
    e = html.escape
    status = (f'<p id="status" style="color: #b00"><strong>该证明已于 {found.revoked_on} 撤销，不再有效。</strong></p>'
              if found.revoked else '<p id="status" style="color: #070"><strong>该证明真实有效。</strong></p>')
    body = f"""{status}
<dl>
<dt>证明编号</dt><dd id="number">{e(found.number)}</dd>
<dt>志愿者</dt><dd id="volunteer">{e(found.volunteer_name)}</dd>
<dt>服务时长</dt><dd id="hours">{found.hours} 小时</dd>
<dt>服务期间</dt><dd id="period">{e(found.period_from)} 至 {e(found.period_to)}</dd>
<dt>出具单位</dt><dd id="issuer">{e(found.organization)}</dd>
<dt>出具日期</dt><dd id="issued">{found.issued_on}</dd>
</dl>"""
    return HTMLResponse(PAGE.format(body=body), headers={"Cache-Control": "no-store"})
