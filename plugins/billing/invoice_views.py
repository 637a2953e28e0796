"""Invoice screens (BL-3): the list, an invoice's page, invoicing an order, drafts, issue, credit notes,
the PDF and the report of deliveries not invoiced within a month.

* ``/billing/invoices`` — invoices and credit notes of the user's scope, filtered by
  status, kind, customer and overdue, paged.
* ``/billing/invoices/<id>`` — lines, dues with their open amount, allocations, credit
  notes, the PDF link; for a draft: edit, delete and issue (with confirmation); for an
  issued invoice: "Credit note".
* ``/billing/orders/<id>/invoice`` — "Invoice order": per order line the quantity,
  prefilled with what is invoiceable; or a prepayment invoice of a percentage.
* ``/billing/invoices/<id>/edit`` and ``/credit-note`` — the draft's and credit note's forms.
* ``/billing/uninvoiced`` — deliveries not invoiced within the late days, with "record reason".

Thin views over :mod:`plugins.billing.invoices`: a refusal is flashed (in the reader's
language) and nothing changes; an issued invoice is never edited here either.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from core.clock import company_now
from core.contrib import MenuItem
from core.documents import reader_language
from core.labels import N_
from core.models import Customer, Order
from core.services import ServiceError
from core.services.orders import get_order
from core.views.common import abort_for, current_actor, paginate, permission_required, query_args
from core.views.labels import translate
from core.web import db, ordo
from plugins.billing import flow, invoices, ledger
from plugins.billing.errors import BillingError
from plugins.billing.invoice_documents import pdf_filename, render_invoice_pdf
from plugins.billing.models import (
    INVOICE_BASES,
    INVOICE_KINDS,
    INVOICE_STATUSES,
    INVOICE_TYPES,
    BillingAllocation,
    BillingInvoice,
)
from plugins.billing.views import bp

MENU: tuple[MenuItem, ...] = (
    MenuItem(
        N_("Invoices"), "billing.invoices", permission=flow.INVOICES_READ, order=30, icon="receipt", plugin="billing"
    ),
    MenuItem(
        N_("Deliveries not invoiced"),
        "billing.uninvoiced",
        permission=flow.INVOICES_READ,
        order=31,
        icon="hourglass-split",
        plugin="billing",
    ),
)

_FILTERS = ("status", "kind", "customer", "overdue", "q")
STATUS_COLOURS = {"draft": "secondary", "issued": "success", "cancelled": "dark"}


def error_text(exc: ServiceError) -> str:
    """A refusal in the reader's language."""
    if isinstance(exc, BillingError):
        return exc.localized()
    return exc.message


def helpers() -> dict[str, Any]:
    """Labels the invoice templates use."""
    return {
        "status_label_of": lambda code: translate(INVOICE_STATUSES.get(code, code)),
        "status_colour": lambda code: STATUS_COLOURS.get(code, "secondary"),
        "kind_label": lambda code: translate(INVOICE_KINDS.get(code, code)),
        "type_label": lambda code: translate(INVOICE_TYPES.get(code, code)),
        "basis_label": lambda code: translate(INVOICE_BASES.get(code, code)),
        "invoice_types": [(code, translate(label)) for code, label in INVOICE_TYPES.items()],
    }


def _invoice(invoice_id: int) -> BillingInvoice:
    try:
        return invoices.get_invoice(db(), current_actor(), invoice_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _order(order_id: int) -> Order:
    try:
        return get_order(db(), current_actor(), order_id)
    except ServiceError as exc:
        raise NotFound() from exc


def _refused(exc: ServiceError) -> None:
    db().rollback()
    abort_for(exc)
    flash(error_text(exc), "danger")


def _back(invoice_id: int) -> WerkzeugResponse:
    return redirect(url_for("billing.invoice_detail", invoice_id=invoice_id))


def _quantities(rows: list[dict[str, Any]], prefix: str = "qty_") -> dict[str, str]:
    """The quantities typed per row id (empty fields: zero)."""
    return {str(row["id"]): (request.form.get(f"{prefix}{row['id']}", "").strip() or "0") for row in rows}


# --- list ---------------------------------------------------------------------------------------


@bp.get("/invoices", endpoint="invoices")
@permission_required(flow.INVOICES_READ)
def invoices_list() -> str:
    """Invoices and credit notes of the user's scope, filtered and paged."""
    session, actor = db(), current_actor()
    args = query_args(*_FILTERS)
    stmt = (
        select(BillingInvoice)
        .join(Customer, Customer.id == BillingInvoice.customer_id)
        .where(invoices.visible_invoices(actor))
    )
    if args.get("status") in INVOICE_STATUSES:
        stmt = stmt.where(BillingInvoice.status == args["status"])
    if args.get("kind") in INVOICE_KINDS:
        stmt = stmt.where(BillingInvoice.kind == args["kind"])
    if args.get("customer"):
        like = f"%{args['customer']}%"
        stmt = stmt.where(or_(Customer.code.ilike(like), Customer.name.ilike(like)))
    if args.get("q"):
        like = f"%{args['q']}%"
        numbered = select(Order.id).where(Order.number.ilike(like))
        stmt = stmt.where(or_(BillingInvoice.number.ilike(like), BillingInvoice.order_id.in_(numbered)))
    if args.get("overdue"):
        stmt = stmt.where(
            BillingInvoice.kind == "invoice",
            BillingInvoice.status == "issued",
            BillingInvoice.settled < BillingInvoice.total,
            BillingInvoice.due_date < company_now().date(),
        )
    page = paginate(
        session,
        stmt,
        sortable={
            "number": BillingInvoice.number,
            "date": BillingInvoice.invoice_date,
            "due": BillingInvoice.due_date,
            "total": BillingInvoice.total,
            "created": BillingInvoice.created_at,
        },
        default_sort="-created",
        endpoint="billing.invoices",
        args=args,
        tie_breaker=BillingInvoice.id,
    )
    customers = {
        c.id: c for c in session.scalars(select(Customer).where(Customer.id.in_({r.customer_id for r in page.rows})))
    }
    orders = {
        o.id: o
        for o in session.scalars(select(Order).where(Order.id.in_({r.order_id for r in page.rows if r.order_id})))
    }
    return render_template(
        "billing/invoice_list.html",
        page=page,
        args=args,
        customers=customers,
        orders=orders,
        today=company_now().date(),
        statuses=[(c, translate(label)) for c, label in INVOICE_STATUSES.items()],
        kinds=[(c, translate(label)) for c, label in INVOICE_KINDS.items()],
        **helpers(),
    )


# --- one invoice ----------------------------------------------------------------------------------


@bp.get("/invoices/<int:invoice_id>")
@permission_required(flow.INVOICES_READ)
def invoice_detail(invoice_id: int) -> str:
    """One invoice: lines, dues with open amounts, allocations, credit notes, actions."""
    session, actor = db(), current_actor()
    invoice = _invoice(invoice_id)
    balances = ledger.due_balances(session, [invoice.id])
    allocations = list(
        session.scalars(
            select(BillingAllocation)
            .where(or_(BillingAllocation.invoice_id == invoice.id, BillingAllocation.credit_note_id == invoice.id))
            .order_by(BillingAllocation.id)
        )
    )
    notes = list(
        session.scalars(
            select(BillingInvoice).where(BillingInvoice.credited_invoice_id == invoice.id).order_by(BillingInvoice.id)
        )
    )
    related = {
        i.id: i
        for i in session.scalars(
            select(BillingInvoice).where(
                BillingInvoice.id.in_(
                    {a.invoice_id for a in allocations} | {a.credit_note_id or 0 for a in allocations}
                )
            )
        )
    }
    return render_template(
        "billing/invoice_detail.html",
        invoice=invoice,
        order=session.get(Order, invoice.order_id) if invoice.order_id else None,
        customer=session.get(Customer, invoice.customer_id),
        credited=session.get(BillingInvoice, invoice.credited_invoice_id) if invoice.credited_invoice_id else None,
        dues=[(d, balances.get(d.id, d.amount)) for d in invoice.dues],
        allocations=allocations,
        related=related,
        notes=notes,
        can_manage=actor.can(flow.INVOICES_MANAGE),
        can_issue=actor.can(flow.INVOICES_ISSUE),
        today=company_now().date().isoformat(),
        **helpers(),
    )


@bp.get("/invoices/<int:invoice_id>/pdf")
@permission_required(flow.INVOICES_READ)
def invoice_pdf(invoice_id: int) -> Response:
    """The invoice PDF in the reader's language (``?lang=zh_CN|en``)."""
    invoice = _invoice(invoice_id)
    wanted = request.args.get("lang", "").strip()
    language = wanted if wanted in ("zh_CN", "en") else reader_language(current_actor())
    pdf = render_invoice_pdf(db(), ordo().registry, invoice, language)
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{pdf_filename(invoice)}"',
            "Cache-Control": "private, no-store",
        },
    )


# --- invoicing an order ---------------------------------------------------------------------------


def _order_rows(session: Session, order: Order, basis: str) -> list[dict[str, Any]]:
    delivered = invoices.basis_quantities(session, order, basis)
    done = invoices.invoiced_quantities(session, order.id)
    left = invoices.invoiceable_quantities(session, order, basis)
    return [
        {
            "id": line.id,
            "line": line,
            "basis": delivered.get(line.id, Decimal("0")),
            "invoiced": done.get(line.id, Decimal("0")),
            "invoiceable": left.get(line.id, Decimal("0")),
        }
        for line in sorted(order.lines, key=lambda line: line.position)
    ]


@bp.route("/orders/<int:order_id>/invoice", methods=["GET", "POST"])
@permission_required(flow.INVOICES_MANAGE)
def invoice_order(order_id: int) -> str | WerkzeugResponse:
    """ "Invoice order": quantities per line prefilled with the invoiceable, or a prepayment invoice."""
    session, actor = db(), current_actor()
    order = _order(order_id)
    basis = request.values.get("basis", "delivered")
    if basis not in ("delivered", "ordered", "prepayment"):
        basis = "delivered"
    rows = _order_rows(session, order, "ordered" if basis == "ordered" else "delivered")
    if request.method == "POST":
        try:
            if basis == "prepayment":
                invoice = invoices.create_prepayment_invoice(session, actor, order, request.form.get("percent") or None)
            else:
                invoice = invoices.create_invoice(
                    session,
                    actor,
                    order,
                    basis=basis,
                    quantities=_quantities(rows),
                    invoice_type=request.form.get("invoice_type") or None,
                )
        except ServiceError as exc:
            _refused(exc)
            order = _order(order_id)
            rows = _order_rows(session, order, "ordered" if basis == "ordered" else "delivered")
        else:
            session.commit()
            flash(_("Draft invoice created; check it and issue it."), "success")
            return _back(invoice.id)
    return render_template(
        "billing/invoice_order.html",
        order=order,
        rows=rows,
        basis=basis,
        form=request.form,
        **helpers(),
    )


# --- drafts ---------------------------------------------------------------------------------------


@bp.route("/invoices/<int:invoice_id>/edit", methods=["GET", "POST"])
@permission_required(flow.INVOICES_MANAGE)
def invoice_edit(invoice_id: int) -> str | WerkzeugResponse:
    """Edit a draft's quantities, type, date and note; an issued invoice is refused."""
    session, actor = db(), current_actor()
    invoice = _invoice(invoice_id)
    rows: list[dict[str, Any]] = []
    if invoice.kind == "invoice" and invoice.basis != "prepayment" and invoice.order_id:
        order = _order(invoice.order_id)
        left = invoices.invoiceable_quantities(session, order, invoice.basis, exclude_invoice_id=invoice.id)
        current = {li.order_line_id: li.quantity for li in invoice.lines if li.order_line_id}
        rows = [
            {
                "id": line.id,
                "line": line,
                "quantity": current.get(line.id, Decimal("0")),
                "invoiceable": left.get(line.id),
            }
            for line in sorted(order.lines, key=lambda line: line.position)
        ]
    if request.method == "POST":
        values: dict[str, Any] = {
            "note": request.form.get("note", ""),
        }
        if request.form.get("invoice_type"):
            values["invoice_type"] = request.form["invoice_type"]
        if "invoice_date" in request.form:
            values["invoice_date"] = request.form.get("invoice_date") or None
        if rows:
            values["quantities"] = _quantities(rows)
        version = request.form.get("version")
        try:
            invoices.update_draft(
                session, actor, invoice_id, values, int(version) if version and version.isdigit() else None
            )
        except ServiceError as exc:
            _refused(exc)
            return _back(invoice_id)
        session.commit()
        flash(_("The draft was saved."), "success")
        return _back(invoice_id)
    if invoice.status != "draft":
        flash(
            BillingError("invoice_issued", invoices.IMMUTABLE, 409, number=invoice.number or "").localized(), "danger"
        )
        return _back(invoice_id)
    return render_template("billing/invoice_edit.html", invoice=invoice, rows=rows, **helpers())


@bp.post("/invoices/<int:invoice_id>/delete")
@permission_required(flow.INVOICES_MANAGE)
def invoice_delete(invoice_id: int) -> WerkzeugResponse:
    """Delete a draft."""
    session, actor = db(), current_actor()
    invoice = _invoice(invoice_id)
    order_id = invoice.order_id
    try:
        invoices.delete_draft(session, actor, invoice_id)
    except ServiceError as exc:
        _refused(exc)
        return _back(invoice_id)
    session.commit()
    flash(_("The draft was deleted."), "success")
    if order_id:
        return redirect(url_for("orders.view_order", order_id=order_id))
    return redirect(url_for("billing.invoices"))


@bp.post("/invoices/<int:invoice_id>/issue")
@permission_required(flow.INVOICES_ISSUE)
def invoice_issue(invoice_id: int) -> WerkzeugResponse:
    """Issue a draft: it gets its number now and can no longer change."""
    session, actor = db(), current_actor()
    _invoice(invoice_id)
    try:
        issued = invoices.issue_invoice(
            session,
            actor,
            invoice_id,
            invoice_date=request.form.get("invoice_date") or None,  # type: ignore[arg-type]
        )
    except ServiceError as exc:
        _refused(exc)
        return _back(invoice_id)
    number = issued.number
    session.commit()
    flash(_("Issued as %(number)s.", number=number), "success")
    return _back(invoice_id)


# --- credit notes ---------------------------------------------------------------------------------


@bp.route("/invoices/<int:invoice_id>/credit-note", methods=["GET", "POST"])
@permission_required(flow.INVOICES_MANAGE)
def invoice_credit_note(invoice_id: int) -> str | WerkzeugResponse:
    """A credit note of an issued invoice: quantities per line (at most what is not yet credited) and the reason."""
    session, actor = db(), current_actor()
    invoice = _invoice(invoice_id)
    credited = invoices.credited_by_position(session, invoice.id)
    rows = [
        {
            "id": li.id,
            "line": li,
            "credited": credited.get(li.position, (Decimal("0"), Decimal("0"), Decimal("0")))[0],
        }
        for li in invoice.lines
        if li.quantity > 0
    ]
    if request.method == "POST":
        quantities = {k: v for k, v in _quantities(rows).items() if v not in ("0", "")}
        try:
            note = invoices.create_credit_note(session, actor, invoice_id, quantities, request.form.get("reason", ""))
        except ServiceError as exc:
            _refused(exc)
        else:
            session.commit()
            flash(_("Draft credit note created; issue it to correct the invoice."), "success")
            return _back(note.id)
    return render_template(
        "billing/invoice_credit_note.html", invoice=invoice, rows=rows, form=request.form, **helpers()
    )


# --- deliveries not invoiced ----------------------------------------------------------------------


@bp.get("/uninvoiced")
@permission_required(flow.INVOICES_READ)
def uninvoiced() -> str:
    """Deliveries not invoiced within the late days and without a recorded reason (BL-3)."""
    session, actor = db(), current_actor()
    rows = invoices.uninvoiced_deliveries(session, actor, company_now().date())
    from core.settings import get_setting

    return render_template(
        "billing/invoice_uninvoiced.html",
        rows=rows,
        late_days=get_setting(session, flow.INVOICE_LATE_DAYS),
        can_manage=actor.can(flow.INVOICES_MANAGE),
    )


@bp.post("/uninvoiced/reason")
@permission_required(flow.INVOICES_MANAGE)
def uninvoiced_reason() -> WerkzeugResponse:
    """Record why a delivery is not invoiced yet; it leaves the report."""
    session, actor = db(), current_actor()
    order_id = request.form.get("order_id", "")
    try:
        invoices.record_uninvoiced_reason(
            session,
            actor,
            int(order_id) if order_id.isdigit() else 0,
            request.form.get("shipment_reference", ""),
            request.form.get("reason", ""),
        )
    except ServiceError as exc:
        _refused(exc)
    else:
        session.commit()
        flash(_("The reason was recorded."), "success")
    return redirect(url_for("billing.uninvoiced"))
