"""API: the KPI report archive, the daily order detail report and the monthly KPI report (``/api/v1/kpi``).

Why: other systems (a BI tool, an intranet page) read the reports the managers receive
by e-mail (KP-4): the archive of sent reports and their files, the daily report of any
day as JSON (within the caller's data scope), and the monthly KPI PDF of any month.
Everything needs ``kpi.reports.read`` (403 without); an unknown report or file is 404, a
malformed ``date`` or ``month`` 422.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from core.api.auth import api_user, require_api_user
from core.api.common import errors
from core.clock import company_now
from core.documents import reader_language
from core.settings import session_registry
from core.web import db
from plugins.kpi import reports
from plugins.kpi.models import KpiReport

blp = Blueprint(
    "kpi_api_reports",
    __name__,
    url_prefix="/api/v1/kpi",
    description="KPI: reports. The archive of sent daily and monthly reports, the daily order detail report, "
    "the monthly KPI report PDF.",
)
blp.before_request(require_api_user)


class ReportSchema(Schema):
    """A sent report in the archive."""

    id = fields.Integer(required=True)
    kind = fields.String(required=True, metadata={"description": "daily or monthly"})
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    generated_at = fields.DateTime(required=True)
    recipients = fields.Integer(required=True, metadata={"description": "People it was sent to."})
    pdf_size = fields.Integer(required=True)
    xlsx_size = fields.Integer(required=True, metadata={"description": "0: no XLSX (monthly reports)."})


class ReportListSchema(Schema):
    """The archive, newest first."""

    items = fields.List(fields.Nested(ReportSchema), required=True)
    total = fields.Integer(required=True)


class ListQuerySchema(Schema):
    """Which page of the archive."""

    kind = fields.String(
        validate=validate.OneOf(("daily", "monthly")), metadata={"description": "daily or monthly (default both)."}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200), metadata={"description": "1–200."})
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=2**31 - 1))


class SectionSchema(Schema):
    """One section of the daily report."""

    key = fields.String(required=True, metadata={"description": "new, changed, shipped (logistics), overdue"})
    title = fields.String(required=True)
    columns = fields.List(fields.String(), required=True)
    count = fields.Integer(required=True, metadata={"description": "Orders in the section (rows are capped)."})
    rows = fields.List(fields.Dict(), required=True)


class DailySchema(Schema):
    """The daily order detail report of a day."""

    date = fields.Date(required=True)
    start = fields.DateTime(required=True)
    end = fields.DateTime(required=True)
    sections = fields.List(fields.Nested(SectionSchema), required=True)


def _report(report: KpiReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "kind": report.kind,
        "period_start": report.period_start,
        "period_end": report.period_end,
        "generated_at": report.generated_at,
        "recipients": report.recipients,
        "pdf_size": report.pdf_size,
        "xlsx_size": report.xlsx_size,
    }


@blp.route("/reports", methods=["GET"])
@blp.arguments(ListQuerySchema, location="query")
@blp.response(200, ReportListSchema)
@errors(blp, 401, 403, 422)
def list_reports(query: dict[str, Any]) -> dict[str, Any]:
    """The archive of sent reports, newest first (``?kind=daily|monthly&limit=&offset=``)."""
    session = db()
    stmt = reports.list_reports(session, api_user())
    if query.get("kind"):
        stmt = stmt.where(KpiReport.kind == query["kind"])
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.scalars(stmt.limit(query["limit"]).offset(query["offset"]))
    return {"items": [_report(r) for r in rows], "total": total}


def _file(report_id: int, fmt: str) -> Response:
    name, content_type, content = reports.report_file(db(), api_user(), report_id, fmt)
    return Response(content, mimetype=content_type, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@blp.route("/reports/<int:report_id>/pdf", methods=["GET"])
@blp.response(200, {"type": "string", "format": "binary"}, content_type=reports.PDF)
@errors(blp, 401, 403, 404)
def report_pdf(report_id: int) -> Response:
    """The archived PDF of a sent report, byte for byte."""
    return _file(report_id, "pdf")


@blp.route("/reports/<int:report_id>/xlsx", methods=["GET"])
@blp.response(200, {"type": "string", "format": "binary"}, content_type=reports.XLSX)
@errors(blp, 401, 403, 404)
def report_xlsx(report_id: int) -> Response:
    """The archived XLSX of a sent daily report (404 for a monthly report: it has none)."""
    return _file(report_id, "xlsx")


def _cell(value: Any) -> Any:
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, int | str):
        return value
    return str(value)


@blp.route("/reports/daily", methods=["GET"])
@blp.response(200, DailySchema)
@errors(blp, 401, 403, 422)
def daily() -> dict[str, Any]:
    """The daily order detail report of ``?date=YYYY-MM-DD`` (default today), within the caller's scope.

    Each section lists its rows as objects keyed by column (in the caller's language), plus
    ``order_id``; money as strings.
    """
    session, user = db(), api_user()
    reports.check_reader(user)
    raw = request.args.get("date", "")
    day = reports.parse_day(raw) if raw.strip() else company_now().date()
    report = reports.daily_report(session, day, viewer=user)
    sections = []
    for table in reports.tables(report, reader_language(user), session_registry(session)):
        keys = reports.COLUMN_KEYS.get(table.key) or [f"c{i}" for i in range(len(table.header))]
        rows = [
            {"order_id": order_id, **{k: _cell(v) for k, v in zip(keys, row, strict=False)}}
            for order_id, row in zip(table.order_ids, table.rows, strict=True)
        ]
        sections.append(
            {"key": table.key, "title": table.title, "columns": table.header, "count": table.count, "rows": rows}
        )
    return {"date": day, "start": report.start, "end": report.end, "sections": sections}


@blp.route("/reports/monthly.pdf", methods=["GET"])
@blp.response(200, {"type": "string", "format": "binary"}, content_type=reports.PDF)
@errors(blp, 401, 403, 422)
def monthly_pdf() -> Response:
    """The monthly KPI report of ``?month=YYYY-MM`` (default last month) as PDF, generated now."""
    session, user = db(), api_user()
    reports.check_reader(user)
    raw = request.args.get("month", "")
    today = company_now().date()
    month = reports.parse_month(raw) if raw.strip() else (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    pdf = reports.monthly_report_pdf(session, month, reader_language(user), viewer=user)
    return Response(
        pdf,
        mimetype=reports.PDF,
        headers={"Content-Disposition": f'attachment; filename="{reports.monthly_filename(month)}"'},
    )
