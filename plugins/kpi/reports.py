"""The daily order detail report (订单明细) and the monthly KPI report, and their archive (KP-4).

Why: the managers start each working day with what happened to the orders since the
previous working day's 09:30 — new, changed, shipped and overdue orders — and each month
with every indicator against its target. Both go out by e-mail as files (PDF and XLSX for
the daily report, PDF for the monthly one) to the roles named in the settings, and each
report sent is kept (:class:`plugins.kpi.models.KpiReport`, files in the file store) so a
job run twice, or on two workers, sends it once and it can be read again.

- :func:`daily_report` reads the sections in SQL (company-wide for the e-mail; a screen
  passes its viewer to see only their scope); :func:`render_daily_pdf`,
  :func:`render_daily_xlsx` render them in a language; :func:`send_daily` is the 09:30 job.
- :func:`monthly_report_pdf` computes every metric of the month (value, target, mark, a
  12-month trend chart) plus the month's rule results; :func:`send_monthly` is the job
  run on the first working day of a month.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from openpyxl import Workbook
from sqlalchemy import Select, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import True_

from core.calendar import add_working_days, working_calendar
from core.clock import COMPANY_TIMEZONE, TIMEZONE_NAME, company_now
from core.contrib import Job, NotificationTemplate
from core.documents import check_language, environment, html_to_pdf, logo_data_uri, translations_for
from core.files import file_store
from core.i18n import LANGUAGES
from core.labels import N_, STATUSES
from core.models import Company, Customer, Order, OrderTransition, Role, User
from core.notify import NotifyFile, ToUser, notify
from core.notify.recipients import ToRole, resolve
from core.security.scopes import order_scope, order_visible
from core.settings import get_setting, session_registry
from core.spreadsheet import xlsx_cell
from plugins.kpi import flow
from plugins.kpi.engine import EVERYONE, Viewer, collect_metrics, mark, measure, series
from plugins.kpi.errors import KpiError
from plugins.kpi.hookspecs import Metric, ReportSection
from plugins.kpi.models import RESULT_STATUSES, RULE_KINDS, KpiReport, KpiRule, KpiRuleResult
from plugins.kpi.periods import period_of, trend

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.plugins import Registry

log = logging.getLogger(__name__)

#: The daily report covers the previous working day's 09:30 up to this time of the day (company time).
CUT_OFF = dt.time(9, 30)
#: Rows per section at most (a busy company has a few hundred a day; the rest is counted).
ROW_LIMIT = 2000
#: Orders that are not yet (drafts) or no longer (closed) of concern.
NOT_RECEIVED = ("draft",)
CLOSED = ("completed", "cancelled", "rejected")
PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The language archived copies are kept in (the company's own).
ARCHIVE_LANGUAGE = "zh_CN"
#: The trend chart of each metric in the monthly report covers this many months.
TREND_MONTHS = 12

DAILY_TITLE = N_("Daily order detail report")
MONTHLY_TITLE = N_("Monthly KPI report")
#: kpi's own sections, in the order they appear (plugins' sections come before "overdue").
SECTION_TITLES = {
    "new": N_("New orders"),
    "changed": N_("Changed orders"),
    "overdue": N_("Overdue orders"),
}
COLUMNS = {
    "new": (N_("Order"), N_("Customer"), N_("Owner"), N_("Status"), N_("Total"), N_("Received")),
    "changed": (
        N_("Order"),
        N_("Customer"),
        N_("Owner"),
        N_("Status"),
        N_("Total"),
        N_("Last step"),
        N_("By"),
        N_("At"),
    ),
    "overdue": (
        N_("Order"),
        N_("Customer"),
        N_("Owner"),
        N_("Status"),
        N_("Total"),
        N_("Requested date"),
        N_("Days overdue"),
    ),
}
#: The keys of each own section's cells in the API's JSON rows.
COLUMN_KEYS = {
    "new": ["number", "customer", "owner", "status", "total", "received_at"],
    "changed": ["number", "customer", "owner", "status", "total", "step", "by", "at"],
    "overdue": ["number", "customer", "owner", "status", "total", "requested_date", "days_overdue"],
}
UNIT_LABELS = {
    "percent": "%",
    "count": "",
    "amount": N_("CNY"),
    "days": N_("days"),
    "hours": N_("hours"),
    "score": N_("points"),
    "ratio": "",
}
MARKS = {"green": N_("On target"), "amber": N_("Close to target"), "red": N_("Off target")}
BAD_MONTH = N_("“%(value)s” is not a month (YYYY-MM).")
BAD_DATE = N_("“%(value)s” is not a date (YYYY-MM-DD).")
NOT_ALLOWED = N_("You may not read the KPI reports.")
NO_REPORT = N_("There is no report %(id)s.")
NO_FILE = N_("Report %(id)s has no %(format)s file.")


# --------------------------------------------------------------------------- the daily report


@dataclass(frozen=True)
class ReportRow:
    """One order in a section of the daily report (raw values: rendering translates them)."""

    order_id: int
    number: str
    customer: str
    owner: str
    status: str
    total: Decimal
    #: ``new``: when it was received; ``changed``: when it last moved.
    at: dt.datetime | None = None
    #: ``changed``: the step it moved to, and who moved it.
    step: str = ""
    actor: str = ""
    #: ``overdue``: the date the customer asked for, and days since.
    requested_date: dt.date | None = None
    days_overdue: int = 0


@dataclass
class DailyReport:
    """The daily order detail report of ``day``: orders of the window ``start`` ≤ t < ``end``.

    ``new``, ``changed`` and ``overdue`` are kpi's own sections; ``extra`` the plugins'
    (logistics: ``shipped``). ``counts`` gives each section's full size (rows are capped at
    :data:`ROW_LIMIT`).
    """

    day: dt.date
    start: dt.datetime
    end: dt.datetime
    new: list[ReportRow] = field(default_factory=list)
    changed: list[ReportRow] = field(default_factory=list)
    overdue: list[ReportRow] = field(default_factory=list)
    extra: list[ReportSection] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def section_keys(self) -> list[str]:
        """The sections in report order: new, changed, the plugins' (shipped), overdue."""
        return ["new", "changed", *(section.key for section in self.extra), "overdue"]


@dataclass(frozen=True)
class Table:
    """A section ready to show in one language: title, header and rows of cells."""

    key: str
    title: str
    header: list[str]
    rows: list[list[Any]]
    order_ids: list[int]
    count: int


def window(session: Session, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The daily report's window for ``day``: previous working day 09:30 up to ``day`` 09:30.

    Monday's covers the weekend (from Friday 09:30); the day after a holiday covers it too.
    """
    previous = add_working_days(session, day, -1)
    return (
        dt.datetime.combine(previous, CUT_OFF, COMPANY_TIMEZONE),
        dt.datetime.combine(day, CUT_OFF, COMPANY_TIMEZONE),
    )


def _order_rows(viewer: Viewer) -> tuple[Select[Any], Any]:
    """The select of an order's number, customer, owner, status and total (within ``viewer``'s scope)."""
    owner = aliased(User, name="owner")
    stmt = (
        select(Order.id, Order.number, Customer.name, func.coalesce(owner.name, ""), Order.status, Order.total)
        .join(Customer, Customer.id == Order.customer_id)
        .outerjoin(owner, owner.id == Order.owner_id)
    )
    if viewer is not EVERYONE:
        stmt = stmt.where(order_scope(viewer if isinstance(viewer, User) else None))
    return stmt, owner


def _count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def daily_report(session: Session, day: dt.date, *, viewer: Viewer = EVERYONE) -> DailyReport:
    """The daily order detail report for ``day`` (KP-4), read in SQL.

    - **new**: orders created in the window and submitted (drafts are not orders yet);
    - **changed**: orders with a transition in the window, with the last one (the step
      and status it led to, who made it, when);
    - the plugins' sections (hook ``ordo_kpi_report_sections``: logistics' *shipped*);
    - **overdue**: orders received and not completed, cancelled or rejected whose
      requested date lies before ``day``.

    ``viewer`` is :data:`EVERYONE` for the report that is sent (company-wide); a screen
    passes its user, and then only orders in their data scope are listed.
    """
    start, end = window(session, day)
    report = DailyReport(day=day, start=start, end=end)
    lower, upper = start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    base, _owner = _order_rows(viewer)
    new = base.add_columns(Order.created_at).where(
        Order.created_at >= lower, Order.created_at < upper, Order.status.not_in(NOT_RECEIVED)
    )
    report.counts["new"] = _count(session, new)
    report.new = [
        ReportRow(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), at=r[6])
        for r in session.execute(new.order_by(Order.created_at, Order.id).limit(ROW_LIMIT))
    ]

    moved = (
        select(OrderTransition.order_id.label("order_id"), func.max(OrderTransition.id).label("last_id"))
        .where(OrderTransition.at >= lower, OrderTransition.at < upper)
        .group_by(OrderTransition.order_id)
        .subquery("moved")
    )
    actor = aliased(User, name="actor")
    changed = (
        base.add_columns(OrderTransition.at, OrderTransition.to_step, func.coalesce(actor.name, ""))
        .join(moved, moved.c.order_id == Order.id)
        .join(OrderTransition, OrderTransition.id == moved.c.last_id)
        .outerjoin(actor, actor.id == OrderTransition.actor_id)
    )
    report.counts["changed"] = _count(session, changed)
    report.changed = [
        ReportRow(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), at=r[6], step=r[7], actor=r[8])
        for r in session.execute(changed.order_by(OrderTransition.at, Order.id).limit(ROW_LIMIT))
    ]

    overdue = base.add_columns(Order.requested_date).where(
        Order.requested_date.is_not(None),
        Order.requested_date < day,
        Order.status.not_in((*NOT_RECEIVED, *CLOSED)),
    )
    report.counts["overdue"] = _count(session, overdue)
    report.overdue = [
        ReportRow(r[0], r[1], r[2], r[3], r[4], Decimal(r[5]), requested_date=r[6], days_overdue=(day - r[6]).days)
        for r in session.execute(overdue.order_by(Order.requested_date, Order.id).limit(ROW_LIMIT))
    ]

    report.extra = _plugin_sections(session, start, end, viewer)
    for section in report.extra:
        report.counts[section.key] = len(section.rows)
    return report


def _plugin_sections(session: Session, start: dt.datetime, end: dt.datetime, viewer: Viewer) -> list[ReportSection]:
    """The sections the enabled plugins add (logistics: shipped), rows limited to ``viewer``'s scope."""
    caller = getattr(session_registry(session).hook, "ordo_kpi_report_sections", None)
    if caller is None:
        return []
    given = {"session": session, "start": start, "end": end}
    found: list[ReportSection] = []
    for impl in caller.get_hookimpls():
        owner = impl.plugin_name.split("+", 1)[0]
        for section in impl.function(*[given[name] for name in impl.argnames]) or ():
            if not isinstance(section, ReportSection):
                log.warning("ordo_kpi_report_sections of %s returned %r; skipped", owner, section)
                continue
            rows = section.rows[:ROW_LIMIT]
            if viewer is not EVERYONE and rows:
                ids = {row[0] for row in rows}
                user = viewer if isinstance(viewer, User) else None
                visible = set(session.scalars(select(Order.id).where(Order.id.in_(ids), order_scope(user))))
                rows = [row for row in rows if row[0] in visible]
            found.append(ReportSection(section.key, section.title, section.columns, list(rows), plugin=owner))
    return found


def tables(report: DailyReport, language: str, registry: Registry) -> list[Table]:
    """The report's sections in ``language``: titles, headers, cells (statuses translated)."""
    gettext = translations_for(registry, language).gettext

    def when(value: dt.datetime | None) -> str:
        """A stored (UTC) time in company time."""
        if value is None:
            return ""
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(COMPANY_TIMEZONE).strftime("%Y-%m-%d %H:%M")

    def common(row: ReportRow) -> list[Any]:
        return [row.number, row.customer, row.owner, gettext(STATUSES.get(row.status, row.status)), row.total]

    own: dict[str, list[list[Any]]] = {
        "new": [[*common(r), when(r.at)] for r in report.new],
        "changed": [[*common(r), r.step, r.actor, when(r.at)] for r in report.changed],
        "overdue": [[*common(r), r.requested_date, r.days_overdue] for r in report.overdue],
    }
    ids = {"new": report.new, "changed": report.changed, "overdue": report.overdue}
    found: list[Table] = []
    extra = {section.key: section for section in report.extra}
    for key in report.section_keys:
        if key in extra:
            section = extra[key]
            found.append(
                Table(
                    key,
                    gettext(section.title),
                    [gettext(c) for c in section.columns],
                    [list(row[1:]) for row in section.rows],
                    [row[0] for row in section.rows],
                    report.counts.get(key, len(section.rows)),
                )
            )
        else:
            found.append(
                Table(
                    key,
                    gettext(SECTION_TITLES[key]),
                    [gettext(c) for c in COLUMNS[key]],
                    own[key],
                    [r.order_id for r in ids[key]],
                    report.counts.get(key, 0),
                )
            )
    return found


def _company(session: Session) -> Company:
    company = session.scalar(select(Company).order_by(Company.id).limit(1))
    if company is None:  # pragma: no cover - an installation always has one
        raise KpiError("not_found", N_("There is no company yet."), 404)
    return company


def _base(session: Session, registry: Registry, title: str, number: str, language: str) -> dict[str, Any]:
    """What documents/base.html needs: the letterhead, the title, the printing time."""
    check_language(language)
    company = _company(session)
    return {
        "order": SimpleNamespace(number=number),
        "document": SimpleNamespace(name=title, label=title),
        "title": str(translations_for(registry, language).gettext(title)),
        "company": company,
        "logo": logo_data_uri(session, company),
        "printed_at": company_now(),
        "timezone": TIMEZONE_NAME,
        "language": language,
    }


def render_daily_html(session: Session, report: DailyReport, language: str) -> str:
    """The daily report as the HTML of its PDF, in ``language``."""
    registry = session_registry(session)
    base = _base(session, registry, DAILY_TITLE, report.day.isoformat(), language)
    return (
        environment(registry, language)
        .get_template("kpi/report_daily_pdf.html")
        .render(**base, report=report, tables=tables(report, language, registry), own=SECTION_TITLES)
    )


def render_daily_pdf(session: Session, report: DailyReport, language: str) -> bytes:
    """The daily report as PDF bytes in ``language`` (Chinese fonts as core's documents)."""
    return html_to_pdf(render_daily_html(session, report, language))


def render_daily_xlsx(session: Session, report: DailyReport, language: str) -> bytes:
    """The daily report as an XLSX workbook in ``language``: one sheet per section.

    Every cell goes through :func:`core.spreadsheet.xlsx_cell`: text is stored as text
    (never a formula) and text starting with ``= + - @`` is prefixed with ``'``, so a
    customer name cannot run anything in a spreadsheet.
    """
    registry = session_registry(session)
    workbook = Workbook(write_only=True)
    for table in tables(report, language, registry):
        title = table.title.replace("/", "-").replace("\\", "-").replace("*", "").replace("?", "")
        sheet = workbook.create_sheet(title=title.replace("[", "(").replace("]", ")").replace(":", " ")[:31])
        sheet.append([xlsx_cell(sheet, text, bold=True) for text in table.header])
        for row in table.rows:
            sheet.append([xlsx_cell(sheet, value) for value in row])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def daily_filename(day: dt.date, extension: str) -> str:
    """``daily-order-report-<day>.<extension>``."""
    return f"daily-order-report-{day.isoformat()}.{extension}"


def is_working_day(session: Session, day: dt.date) -> bool:
    """Whether ``day`` is a working day in the company's calendar."""
    return working_calendar(session, start=day, end=day).is_working_day(day)


def _roles(session: Session, setting: str) -> list[str]:
    """The role codes of ``setting`` that exist (unknown codes are skipped with a warning)."""
    codes = [c.strip() for c in str(get_setting(session, setting) or "").split(",") if c.strip()]
    known = set(session.scalars(select(Role.code).where(Role.code.in_(codes)))) if codes else set()
    for code in codes:
        if code not in known:
            log.warning("setting %s names the unknown role %r; skipped", setting, code)
    return [c for c in dict.fromkeys(codes) if c in known]


def _recipients(session: Session, setting: str) -> dict[str, list[User]]:
    """The active users holding the roles of ``setting``, grouped by the language they read."""
    roles = _roles(session, setting)
    if not roles:
        return {}
    grouped: dict[str, list[User]] = {}
    for user in resolve(session, [ToRole(code) for code in roles]).users:
        language = user.language if user.language in LANGUAGES else ARCHIVE_LANGUAGE
        grouped.setdefault(language, []).append(user)
    return grouped


def _claim(session: Session, kind: str, start: dt.date, end: dt.date) -> KpiReport | None:
    """The new archive row of report ``kind`` for ``start``; None when it exists (sent already).

    The unique (kind, period_start) makes a second worker's insert fail: its savepoint rolls
    back and it sends nothing.
    """
    exists = session.scalar(select(KpiReport.id).where(KpiReport.kind == kind, KpiReport.period_start == start))
    if exists is not None:
        return None
    report = KpiReport(kind=kind, period_start=start, period_end=end)
    try:
        with session.begin_nested():
            session.add(report)
            session.flush()
    except IntegrityError:
        return None
    return report


def send_daily(session: Session, now: dt.datetime) -> KpiReport | None:
    """Send the daily order detail report of ``now``'s day (the 09:30 job); None when nothing was due.

    Only on working days at or after 09:30 company time, and once per day: the archive row
    (``KpiReport`` kind ``daily``) is claimed first. Each recipient (roles of setting
    ``kpi.daily_report.roles``) gets the PDF and XLSX in their language; the Chinese copy
    is archived. Nothing is sent when no user holds those roles, but the day is archived.
    """
    local = now.astimezone(COMPANY_TIMEZONE)
    day = local.date()
    if local.time() < CUT_OFF or not is_working_day(session, day):
        return None
    start, end = window(session, day)
    archive = _claim(session, "daily", day, day)
    if archive is None:
        return None
    report = daily_report(session, day, viewer=EVERYONE)
    recipients = _recipients(session, flow.DAILY_REPORT_ROLES)
    rendered: dict[str, tuple[bytes, bytes]] = {}
    for language in {ARCHIVE_LANGUAGE, *recipients}:
        rendered[language] = (render_daily_pdf(session, report, language), render_daily_xlsx(session, report, language))
    store = file_store(session)
    pdf, xlsx = rendered[ARCHIVE_LANGUAGE]
    archive.pdf_sha256, archive.pdf_size = store.put(pdf), len(pdf)
    archive.xlsx_sha256, archive.xlsx_size = store.put(xlsx), len(xlsx)
    context = {
        "day": day.isoformat(),
        "start": start.strftime("%Y-%m-%d %H:%M"),
        "end": end.strftime("%Y-%m-%d %H:%M"),
        "counts": {key: report.counts.get(key, 0) for key in report.section_keys},
        "new": report.counts.get("new", 0),
        "changed": report.counts.get("changed", 0),
        "overdue": report.counts.get("overdue", 0),
        "shipped": report.counts.get("shipped"),
    }
    sent = 0
    for language, users in recipients.items():
        pdf, xlsx = rendered[language]
        files = [
            NotifyFile(daily_filename(day, "pdf"), PDF, pdf),
            NotifyFile(daily_filename(day, "xlsx"), XLSX, xlsx),
        ]
        notify(
            session,
            "kpi.daily_report",
            to=[ToUser(user.id) for user in users],
            context=context,
            files=files,
            dedupe_key=f"kpi.daily_report:{day.isoformat()}",
        )
        sent += len(users)
    archive.recipients = sent
    session.flush()
    return archive


# --------------------------------------------------------------------------- the monthly report


@dataclass(frozen=True)
class MetricLine:
    """One metric of the monthly report: value, target and mark of the month, and its trend chart."""

    metric: Metric
    value: Decimal | None
    target: Decimal | None
    mark: str | None
    chart: Any


def month_label(first: dt.date) -> str:
    """``YYYY-MM``."""
    return f"{first.year:04d}-{first.month:02d}"


def parse_month(value: str) -> dt.date:
    """The first day of month ``YYYY-MM`` (or of a date's month); a 422 :class:`KpiError` otherwise."""
    text = (value or "").strip()
    try:
        if len(text) == 7:
            return dt.date.fromisoformat(text + "-01")
        return dt.date.fromisoformat(text).replace(day=1)
    except ValueError:
        raise KpiError("invalid", BAD_MONTH, 422, {"month": ["Not a month (YYYY-MM)."]}, value=text) from None


def parse_day(value: str) -> dt.date:
    """Date ``YYYY-MM-DD``; a 422 :class:`KpiError` otherwise."""
    text = (value or "").strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise KpiError("invalid", BAD_DATE, 422, {"date": ["Not a date (YYYY-MM-DD)."]}, value=text) from None


def _format(value: Decimal | None, places: int) -> str:
    if value is None:
        return "–"
    return f"{value:,.{places}f}"


def monthly_lines(
    session: Session, month_first_day: dt.date, language: str, viewer: Viewer = EVERYONE
) -> list[MetricLine]:
    """Every enabled metric over the month with target, mark and trend chart, within ``viewer``'s scope."""
    from plugins.kpi.charts import line_chart
    from plugins.kpi.targets import effective_target, viewer_target

    registry = session_registry(session)
    gettext = translations_for(registry, language).gettext
    band = Decimal(str(get_setting(session, flow.AMBER_BAND)))
    month = period_of("month", month_first_day)
    lines: list[MetricLine] = []
    for metric in collect_metrics(registry).values():
        value = measure(session, metric, month, viewer=viewer).value
        target = (
            viewer_target(session, metric, viewer) if isinstance(viewer, User) else effective_target(session, metric)
        )
        points = [
            (month_label(p.start), v.value)
            for p, v in series(session, metric, trend(month, TREND_MONTHS), viewer=viewer)
        ]
        unit = UNIT_LABELS.get(metric.unit, "")
        chart = line_chart(points, target=target, unit=gettext(unit) if unit else "", title=gettext(metric.label))
        lines.append(MetricLine(metric, value, target, mark(metric, value, target, band), chart))
    return lines


def rule_results(session: Session, month_first_day: dt.date) -> list[tuple[KpiRuleResult, KpiRule]]:
    """The reward and alert rule results of the month (KP-2), rewards first."""
    return [
        (result, rule)
        for result, rule in session.execute(
            select(KpiRuleResult, KpiRule)
            .join(KpiRule, KpiRule.id == KpiRuleResult.rule_id)
            .where(KpiRuleResult.month == month_first_day)
            .order_by(KpiRule.kind.desc(), KpiRule.name, KpiRuleResult.subject_name)
        ).tuples()
    ]


def render_monthly_html(session: Session, month_first_day: dt.date, language: str, viewer: Viewer = EVERYONE) -> str:
    """The monthly KPI report as the HTML of its PDF (charts as inline SVG), within ``viewer``'s scope.

    The rule results (company, branches, people) are in it only for company-wide readers.
    """
    registry = session_registry(session)
    first = month_first_day.replace(day=1)
    base = _base(session, registry, MONTHLY_TITLE, month_label(first), language)
    return (
        environment(registry, language)
        .get_template("kpi/report_monthly_pdf.html")
        .render(
            **base,
            month=first,
            month_end=period_of("month", first).end,
            lines=monthly_lines(session, first, language, viewer),
            results=rule_results(session, first) if company_wide(viewer) else [],
            unit_labels=UNIT_LABELS,
            marks=MARKS,
            rule_kinds=RULE_KINDS,
            result_statuses=RESULT_STATUSES,
            fmt=_format,
        )
    )


def monthly_report_pdf(session: Session, month_first_day: dt.date, language: str, viewer: Viewer = EVERYONE) -> bytes:
    """The monthly KPI report of the month starting ``month_first_day`` as PDF bytes in ``language``.

    Every enabled metric (company-wide for the job that sends it, ``viewer``'s data scope
    when generated on request): the month's value, its target
    (:func:`plugins.kpi.targets.effective_target`), the red/amber/green mark and a
    12-month trend chart; then the month's reward and alert rule results.
    """
    return html_to_pdf(render_monthly_html(session, month_first_day, language, viewer))


def monthly_filename(month_first_day: dt.date) -> str:
    """``monthly-kpi-report-YYYY-MM.pdf``."""
    return f"monthly-kpi-report-{month_label(month_first_day)}.pdf"


def send_monthly(session: Session, now: dt.datetime) -> KpiReport | None:
    """Send last month's KPI report (the 07:00 job); None when nothing was due.

    Due on the first working day of a month (or a later working day of it when it was not
    sent yet, say the worker was down), once: the archive row (kind ``monthly``) is claimed
    first. Recipients: the roles of setting ``kpi.monthly_report.roles``, each in their
    language; the Chinese copy is archived.
    """
    day = now.astimezone(COMPANY_TIMEZONE).date()
    first_working = add_working_days(session, day.replace(day=1), 0)
    if day < first_working or not is_working_day(session, day):
        return None
    last_month = (day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    archive = _claim(session, "monthly", last_month, period_of("month", last_month).end)
    if archive is None:
        return None
    recipients = _recipients(session, flow.MONTHLY_REPORT_ROLES)
    rendered = {lang: monthly_report_pdf(session, last_month, lang) for lang in {ARCHIVE_LANGUAGE, *recipients}}
    pdf = rendered[ARCHIVE_LANGUAGE]
    archive.pdf_sha256, archive.pdf_size = file_store(session).put(pdf), len(pdf)
    sent = 0
    for language, users in recipients.items():
        notify(
            session,
            "kpi.monthly_report",
            to=[ToUser(user.id) for user in users],
            context={"month": month_label(last_month)},
            files=[NotifyFile(monthly_filename(last_month), PDF, rendered[language])],
            dedupe_key=f"kpi.monthly_report:{month_label(last_month)}",
        )
        sent += len(users)
    archive.recipients = sent
    session.flush()
    return archive


# --------------------------------------------------------------------------- reading the archive


def check_reader(actor: User) -> None:
    """403 :class:`KpiError` unless ``actor`` may read the reports."""
    if not actor.can(flow.REPORTS_READ):
        raise KpiError("forbidden", NOT_ALLOWED, 403)


def company_wide(viewer: Viewer) -> bool:
    """Whether ``viewer`` sees every order (the sent reports are company-wide figures)."""
    if viewer is EVERYONE:
        return True
    return isinstance(viewer, User) and isinstance(order_scope(viewer), True_)


def list_reports(session: Session, actor: User) -> Select[tuple[KpiReport]]:
    """The archive's rows, newest first, for a reader (403 otherwise).

    The archived reports are the company-wide ones that were sent, so a reader whose data
    scope is narrower (a branch manager) sees an empty archive and uses the previews,
    which are limited to their scope.
    """
    check_reader(actor)
    stmt = select(KpiReport).order_by(KpiReport.period_start.desc(), KpiReport.id.desc())
    return stmt if company_wide(actor) else stmt.where(false())


def get_report(session: Session, actor: User, report_id: int) -> KpiReport:
    """Archived report ``report_id`` (403 without the permission, 404 when there is none)."""
    check_reader(actor)
    report = session.get(KpiReport, report_id)
    if report is None or not company_wide(actor):
        raise KpiError("not_found", NO_REPORT, 404, id=report_id)
    return report


def report_file(session: Session, actor: User, report_id: int, fmt: str) -> tuple[str, str, bytes]:
    """``(filename, content type, bytes)`` of an archived report's ``pdf`` or ``xlsx`` (404 without one)."""
    report = get_report(session, actor, report_id)
    sha = report.pdf_sha256 if fmt == "pdf" else report.xlsx_sha256 if fmt == "xlsx" else ""
    if not sha:
        raise KpiError("not_found", NO_FILE, 404, id=report_id, format=fmt.upper())
    try:
        content = file_store(session).get(sha)
    except (OSError, ValueError):
        log.exception("file %s of kpi report %s cannot be read", sha, report_id)
        raise KpiError("not_found", NO_FILE, 404, id=report_id, format=fmt.upper()) from None
    if report.kind == "monthly":
        name = monthly_filename(report.period_start)
    else:
        name = daily_filename(report.period_start, fmt)
    return name, PDF if fmt == "pdf" else XLSX, content


def visible_orders(session: Session, viewer: User, ids: Sequence[int]) -> set[int]:
    """The ids among ``ids`` of orders ``viewer`` may open (to link them on screens)."""
    if not ids:
        return set()
    return set(session.scalars(select(Order.id).where(Order.id.in_(set(ids)), order_visible(Order.id, viewer))))


# --------------------------------------------------------------------------- jobs and notices


def _daily_job(session: Session, now: dt.datetime) -> None:
    send_daily(session, now)


def _monthly_job(session: Session, now: dt.datetime) -> None:
    send_monthly(session, now)


JOBS = (
    Job("kpi.daily_report", "daily:09:30", _daily_job, plugin="kpi", label=N_("KPI: daily order detail report")),
    Job("kpi.monthly_report", "daily:07:00", _monthly_job, plugin="kpi", label=N_("KPI: monthly KPI report")),
)

NOTIFICATIONS = (
    NotificationTemplate(
        "kpi.daily_report",
        subject={"zh_CN": "订单明细日报 {{ day }}", "en": "Daily order detail report {{ day }}"},
        body={
            "zh_CN": (
                "{{ recipient }}，您好：\n\n"
                "附件为 {{ start }} 至 {{ end }} 的订单明细日报（PDF 与 Excel）。\n"
                "新订单 {{ new }} 个，变更订单 {{ changed }} 个"
                "{% if shipped is not none %}，已发货订单 {{ shipped }} 个{% endif %}，"
                "逾期订单 {{ overdue }} 个。\n"
            ),
            "en": (
                "Dear {{ recipient }},\n\n"
                "Attached is the daily order detail report from {{ start }} to {{ end }} (PDF and Excel).\n"
                "New orders: {{ new }}; changed: {{ changed }}"
                "{% if shipped is not none %}; shipped: {{ shipped }}{% endif %}; overdue: {{ overdue }}.\n"
            ),
        },
        plugin="kpi",
        label=N_("KPI: daily order detail report"),
    ),
    NotificationTemplate(
        "kpi.monthly_report",
        subject={"zh_CN": "月度KPI报告 {{ month }}", "en": "Monthly KPI report {{ month }}"},
        body={
            "zh_CN": "{{ recipient }}，您好：\n\n附件为 {{ month }} 的月度KPI报告（PDF）。\n",
            "en": "Dear {{ recipient }},\n\nAttached is the monthly KPI report for {{ month }} (PDF).\n",
        },
        plugin="kpi",
        label=N_("KPI: monthly KPI report"),
    ),
)
