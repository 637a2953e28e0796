"""Screen "Reports" (``/kpi/reports``): the archive of sent reports, today's daily report, any month's KPI PDF.

Why: the managers who receive the daily order detail report and the monthly KPI report
by e-mail (KP-4) find every report sent again here (the archived PDF and XLSX, byte for
byte), look at the daily report of any day before it goes out, and print the monthly
report of any month. Everything needs ``kpi.reports.read``; the preview lists only the
orders in the reader's data scope, the archive holds the company-wide copies as sent.
"""

from __future__ import annotations

import datetime as dt

from flask import flash, render_template, request
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from core.clock import company_now
from core.contrib import MenuItem
from core.documents import reader_language
from core.labels import N_
from core.settings import session_registry
from core.views.common import abort_for, current_actor, paginate, permission_required
from core.web import db
from plugins.kpi import flow, reports
from plugins.kpi.errors import KpiError
from plugins.kpi.models import REPORT_KINDS, KpiReport
from plugins.kpi.views import bp

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Reports"), "kpi.reports", permission=flow.REPORTS_READ, order=60, icon="file-earmark-text", plugin="kpi"
    ),
)


def _day(raw: str, default: dt.date) -> dt.date:
    if not raw.strip():
        return default
    try:
        return reports.parse_day(raw)
    except KpiError as exc:
        flash(exc.localized(), "warning")
        return default


@bp.get("/reports", endpoint="reports")
@permission_required(flow.REPORTS_READ)
def archive() -> str:
    """The archive of sent reports, newest first, with the day and month pickers."""
    session, actor = db(), current_actor()
    page = paginate(
        session,
        reports.list_reports(session, actor),
        sortable={"period": KpiReport.period_start, "generated": KpiReport.generated_at},
        default_sort="-period",
        endpoint="kpi.reports",
        args={},
        tie_breaker=KpiReport.id,
    )
    today = company_now().date()
    last_month = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    return render_template(
        "kpi/reports.html",
        page=page,
        kinds=REPORT_KINDS,
        today=today,
        last_month=reports.month_label(last_month),
        title=_("Reports"),
    )


@bp.get("/reports/daily", endpoint="report_daily")
@permission_required(flow.REPORTS_READ)
def daily() -> str:
    """The daily order detail report of a day (default today) as a page, within the reader's scope."""
    session, actor = db(), current_actor()
    day = _day(request.args.get("date", ""), company_now().date())
    report = reports.daily_report(session, day, viewer=actor)
    tables = reports.tables(report, reader_language(actor), session_registry(session))
    ids = [order_id for table in tables for order_id in table.order_ids]
    return render_template(
        "kpi/report_daily.html",
        report=report,
        tables=tables,
        own=reports.SECTION_TITLES,
        linked=reports.visible_orders(session, actor, ids),
        day=day,
        title=_("Daily order detail report"),
    )


def _download(name: str, content_type: str, content: bytes) -> Response:
    return Response(
        content,
        mimetype=content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


@bp.get("/reports/<int:report_id>/<any(pdf, xlsx):fmt>", endpoint="report_file")
@permission_required(flow.REPORTS_READ)
def report_file(report_id: int, fmt: str) -> Response:
    """An archived report's PDF or XLSX, as it was sent."""
    try:
        name, content_type, content = reports.report_file(db(), current_actor(), report_id, fmt)
    except KpiError as exc:
        abort_for(exc)
        raise
    return _download(name, content_type, content)


@bp.get("/reports/monthly.pdf", endpoint="report_monthly_pdf")
@permission_required(flow.REPORTS_READ)
def monthly_pdf() -> Response | tuple[str, int]:
    """The monthly KPI report of ``?month=YYYY-MM`` (default last month), generated now."""
    session, actor = db(), current_actor()
    today = company_now().date()
    raw = request.args.get("month", "").strip()
    try:
        month = reports.parse_month(raw) if raw else (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    except KpiError as exc:
        flash(exc.localized(), "danger")
        return archive(), 422
    pdf = reports.monthly_report_pdf(session, month, reader_language(actor), viewer=actor)
    return _download(reports.monthly_filename(month), reports.PDF, pdf)
