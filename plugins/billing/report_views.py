"""Screens "Receivables" (ageing, balances, collections) and write-offs (``/billing/reports``, ``/billing/write-offs``).

Why: finance and the managers review receivables and collections periodically (BL-6)
and close what cannot be collected with an approved write-off (BL-2). The figures come
from :mod:`plugins.billing.reports` in the viewer's data scope; each report downloads as
CSV or XLSX with the same rows. Write-offs are requested from an invoice (finance) and
approved or refused by another person holding ``billing.writeoff.approve``; the services
in :mod:`plugins.billing.settlement` check everything. Routes are added to
:data:`plugins.billing.views.bp`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.wrappers import Response

from core.clock import company_now
from core.contrib import MenuItem
from core.labels import N_
from core.models import Customer, Order, User
from core.services import NotFound
from core.views.common import PAGE_SIZES, Page, abort_for, current_actor, paginate, permission_required, safe_target
from core.views.export import FORMATS, export_response
from core.views.labels import translate
from core.web import db
from plugins.billing import flow, reports, scope, settlement
from plugins.billing.errors import BillingError
from plugins.billing.models import PAYMENT_METHODS, WRITE_OFF_STATUSES, BillingInvoice, BillingWriteOff
from plugins.billing.views import bp

#: Menu entries of these screens (collected by the plugin's ordo_menu_items).
MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Receivables"),
        "billing.report_receivables",
        permission=flow.REPORTS_READ,
        order=80,
        icon="bar-chart",
        plugin="billing",
    ),
    MenuItem(
        N_("Write-offs"),
        "billing.write_offs",
        permission=flow.INVOICES_READ,
        order=85,
        icon="x-octagon",
        plugin="billing",
    ),
)

REPORT_TABS = (
    ("billing.report_receivables", N_("Ageing")),
    ("billing.report_balances", N_("Customer balances")),
    ("billing.report_collections", N_("Collections")),
)


def _date(name: str, default: dt.date) -> dt.date:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        flash(_("“%(value)s” is not a date (YYYY-MM-DD); %(default)s is shown.", value=raw, default=default), "warning")
        return default


def _page_of(rows: list[Any], endpoint: str, args: dict[str, Any]) -> Page:
    raw_size, raw_page = request.args.get("size", ""), request.args.get("page", "")
    size = int(raw_size) if raw_size.isdigit() and int(raw_size) in PAGE_SIZES else PAGE_SIZES[0]
    pages = max(1, -(-len(rows) // size))
    number = min(int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1, pages)
    return Page(rows[(number - 1) * size : number * size], len(rows), number, size, "", endpoint, args)


def _ageing_args() -> tuple[dt.date, str]:
    today = company_now().date()
    group = request.args.get("group", "customer")
    return _date("as_of", today), group if group in reports.GROUPS else "customer"


def _group_label(row: reports.AgeingRow, group: str) -> str:
    if row.key == reports.NONE_KEY:
        return _("(none)") if group != "customer" else row.name
    return f"{row.code} {row.name}".strip()


@bp.get("/reports/receivables", endpoint="report_receivables")
@permission_required(flow.REPORTS_READ)
def receivables() -> str:
    """Receivables ageing (0–30, 31–60, 61–90, over 90 days overdue, not yet due) by customer, salesperson or branch."""
    as_of, group = _ageing_args()
    rows = reports.ageing(db(), current_actor(), as_of, group)
    args = {"as_of": as_of.isoformat(), "group": group}
    return render_template(
        "billing/report_receivables.html",
        page=_page_of(rows, "billing.report_receivables", args),
        total=reports.ageing_total(rows),
        buckets=reports.BUCKETS,
        groups=reports.GROUPS,
        group=group,
        as_of=as_of,
        args=args,
        tabs=REPORT_TABS,
        group_label=lambda row: _group_label(row, group),
        title=_("Receivables"),
    )


@bp.get("/reports/receivables.<fmt>", endpoint="report_receivables_export")
@permission_required(flow.REPORTS_READ)
def receivables_export(fmt: str) -> Response:
    """The ageing as CSV or XLSX."""
    if fmt not in FORMATS:
        abort(404)
    as_of, group = _ageing_args()
    rows = reports.ageing(db(), current_actor(), as_of, group)
    header = [translate(reports.GROUPS[group]), *[translate(label) for label in reports.BUCKETS.values()]]
    header += [_("Overdue"), _("Total")]
    data = [[_group_label(r, group), *r.buckets.values(), r.overdue, r.total] for r in rows]
    return export_response(fmt, f"receivables-{as_of.isoformat()}", header, data)


@bp.get("/reports/balances", endpoint="report_balances")
@permission_required(flow.REPORTS_READ)
def balances() -> str:
    """Customer balances: open receivables, unallocated payments and unused credit notes, net."""
    rows = reports.customer_balances(db(), current_actor())
    return render_template(
        "billing/report_balances.html",
        page=_page_of(rows, "billing.report_balances", {}),
        rows=rows,
        tabs=REPORT_TABS,
        title=_("Customer balances"),
    )


@bp.get("/reports/balances.<fmt>", endpoint="report_balances_export")
@permission_required(flow.REPORTS_READ)
def balances_export(fmt: str) -> Response:
    """The customer balances as CSV or XLSX."""
    if fmt not in FORMATS:
        abort(404)
    rows = reports.customer_balances(db(), current_actor())
    header = [
        _("Customer code"),
        _("Customer"),
        _("Open receivables"),
        _("Unallocated payments"),
        _("Unused credit notes"),
        _("Balance"),
        _("Net"),
    ]
    data = [[r.code, r.name, r.open_receivables, r.unallocated, r.unused_credit, r.balance, r.net] for r in rows]
    return export_response(fmt, "customer-balances", header, data)


def _period() -> tuple[dt.date, dt.date]:
    today = company_now().date()
    start, end = _date("start", today.replace(day=1)), _date("end", today)
    if start > end:
        flash(_("The period starts after it ends; the current month is shown."), "warning")
        return today.replace(day=1), today
    return start, end


@bp.get("/reports/collections", endpoint="report_collections")
@permission_required(flow.REPORTS_READ)
def collections() -> str:
    """Payments received in a period by month and method, and the allocations made effective in it."""
    start, end = _period()
    found = reports.collections(db(), current_actor(), start, end)
    return render_template(
        "billing/report_collections.html",
        found=found,
        start=start,
        end=end,
        methods=PAYMENT_METHODS,
        sources=reports.SOURCES,
        tabs=REPORT_TABS,
        title=_("Collections"),
    )


@bp.get("/reports/collections.<fmt>", endpoint="report_collections_export")
@permission_required(flow.REPORTS_READ)
def collections_export(fmt: str) -> Response:
    """The collections of the period as CSV or XLSX."""
    if fmt not in FORMATS:
        abort(404)
    start, end = _period()
    found = reports.collections(db(), current_actor(), start, end)
    header = [_("Month"), _("Method"), _("Payments"), _("Received"), _("Allocated"), _("Unallocated")]

    def rows() -> Iterator[list[object]]:
        for row in found.rows:
            label = PAYMENT_METHODS.get(row.method)
            method = translate(label) if label else row.method
            yield [row.month, method, row.count, row.received, row.allocated, row.unallocated]

    return export_response(fmt, f"collections-{start.isoformat()}-{end.isoformat()}", header, rows())


# --- write-offs ------------------------------------------------------------------------


@bp.get("/write-offs", endpoint="write_offs")
@permission_required(flow.INVOICES_READ)
def write_offs() -> str:
    """Write-offs of invoices in scope: requested ones first; approve or refuse them."""
    session, actor = db(), current_actor()
    status = request.args.get("status", "requested")
    if status not in WRITE_OFF_STATUSES and status != "all":
        status = "requested"
    stmt = (
        select(BillingWriteOff)
        .join(BillingInvoice, BillingInvoice.id == BillingWriteOff.invoice_id)
        .where(scope.invoice_scope(actor))
    )
    if status != "all":
        stmt = stmt.where(BillingWriteOff.status == status)
    page = paginate(
        session,
        stmt,
        sortable={"requested": BillingWriteOff.requested_at, "amount": BillingWriteOff.amount},
        default_sort="-requested",
        endpoint="billing.write_offs",
        args={"status": status},
        tie_breaker=BillingWriteOff.id,
    )
    invoice_ids = {w.invoice_id for w in page.rows}
    invoices = (
        {i.id: i for i in session.scalars(select(BillingInvoice).where(BillingInvoice.id.in_(invoice_ids)))}
        if invoice_ids
        else {}
    )
    customer_ids = {i.customer_id for i in invoices.values()}
    customers = (
        {c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))}
        if customer_ids
        else {}
    )
    order_ids = {w.order_id for w in page.rows if w.order_id}
    orders = {o.id: o for o in session.scalars(select(Order).where(Order.id.in_(order_ids)))} if order_ids else {}
    people_ids = {w.requested_by_id for w in page.rows} | {w.decided_by_id for w in page.rows}
    people_ids.discard(None)
    people = {u.id: u for u in session.scalars(select(User).where(User.id.in_(people_ids)))} if people_ids else {}
    return render_template(
        "billing/settlement_write_offs.html",
        page=page,
        status=status,
        statuses=WRITE_OFF_STATUSES,
        invoices=invoices,
        customers=customers,
        orders=orders,
        people=people,
        may_decide=actor.can(flow.WRITE_OFF_APPROVE),
        actor=actor,
        title=_("Write-offs"),
    )


@bp.route("/invoices/<int:invoice_id>/write-off", methods=["GET", "POST"], endpoint="write_off_request")
@permission_required(flow.WRITE_OFF_REQUEST)
def write_off_request(invoice_id: int) -> str | Response:
    """Ask to write off (part of) an invoice's open amount, with a reason."""
    session, actor = db(), current_actor()
    try:
        invoice = scope.get_invoice(session, actor, invoice_id)
    except NotFound:
        abort(404)
    values = {"amount": str(invoice.open_amount), "reason": ""}
    error = ""
    if request.method == "POST":
        values = {"amount": request.form.get("amount", ""), "reason": request.form.get("reason", "")}
        try:
            settlement.request_write_off(session, actor, invoice.id, values["amount"], values["reason"])
        except BillingError as exc:
            session.rollback()
            abort_for(exc)
            error = exc.localized()
            flash(error, "danger")
        else:
            session.commit()
            flash(_("The write-off is requested; an approver decides on it."), "success")
            target = url_for("orders.view_order", order_id=invoice.order_id) if invoice.order_id else None
            return redirect(safe_target(request.form.get("next"), target or url_for("billing.write_offs")))
    return render_template(
        "billing/settlement_write_off_form.html",
        invoice=invoice,
        customer=session.get(Customer, invoice.customer_id),
        pending=settlement.pending_write_offs(session, invoice.id),
        values=values,
        error=error,
        next=safe_target(request.args.get("next") or request.form.get("next"), ""),
        title=_("Request a write-off"),
    )


@bp.post("/write-offs/<int:write_off_id>/decide", endpoint="write_off_decide")
@permission_required(flow.WRITE_OFF_APPROVE)
def write_off_decide(write_off_id: int) -> Response:
    """Approve or refuse a requested write-off (not the requester's own)."""
    session, actor = db(), current_actor()
    decision = request.form.get("decision", "")
    if decision not in ("approve", "refuse"):
        abort(400)
    try:
        settlement.decide_write_off(session, actor, write_off_id, decision == "approve", request.form.get("note", ""))
    except BillingError as exc:
        session.rollback()
        if exc.status == 404:
            abort(404)
        flash(exc.localized(), "danger")
    except NotFound:
        abort(404)
    else:
        session.commit()
        flash(_("The write-off is approved.") if decision == "approve" else _("The write-off is refused."), "success")
    return redirect(safe_target(request.form.get("next"), url_for("billing.write_offs")))
