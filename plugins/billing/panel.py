"""The billing panel of the order page: terms, credit, invoices, payments and the settlement check.

Why: sales, finance and managers open the order page to answer "may it go on, is it
invoiced, is it paid, what keeps it from closing?" (BL-1, BL-2, BL-5, RV-7). Staff holding
``billing.invoices.read`` or ``billing.accounts.read`` (and the order in their data scope)
see: the order's payment terms and finance's approval; the credit gate's answer for the
order's next path (confirmation, release, shipment, re-opening) and a valid exception;
the invoices and credit notes with their open amounts; the payments, credit notes and
write-offs allocated to them; the settlement check — delivered and invoiced amounts, what
is open, every difference listed. Holders of ``billing.invoices.manage`` get a link to
invoice the order, holders of ``billing.writeoff.request`` one per open invoice to request
a write-off. Portal users see nothing here.

Links to other billing screens are built only when the endpoint exists (:func:`link`),
so the panel never breaks while a screen is missing or renamed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import current_app, render_template, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from core.contrib import Panel
from core.models import Order, User
from core.services.orders import may_see_order
from core.views.labels import translate
from plugins.billing import flow, settlement
from plugins.billing.models import (
    GATE_PATHS,
    INVOICE_KINDS,
    INVOICE_STATUSES,
    PAYMENT_METHODS,
    TERM_KINDS,
    WRITE_OFF_STATUSES,
    BillingAllocation,
    BillingInvoice,
    BillingOrderTerms,
    BillingPayment,
    BillingWriteOff,
)

#: Screens of other billing modules the panel links to (the first that exists is used).
INVOICE_PAGE = ("billing.invoice_detail", "billing.invoice_view", "billing.invoice")
NEW_INVOICE = ("billing.invoice_new", "billing.invoice_create", "billing.new_invoice", "billing.invoice_order")
PAYMENT_PAGE = ("billing.payment_detail", "billing.payment_view", "billing.payment")
ACCOUNT_PAGE = ("billing.account_detail", "billing.account_view", "billing.account")

#: Bootstrap colour of each invoice status.
INVOICE_COLOURS = {"draft": "light", "issued": "primary", "cancelled": "secondary"}


def link(candidates: Iterable[str], **values: Any) -> str | None:
    """The URL of the first endpoint of ``candidates`` the app has, built with ``values``; else None."""
    for endpoint in candidates:
        if endpoint in current_app.view_functions:
            try:
                return url_for(endpoint, **values)
            except BuildError:
                continue
    return None


def label(table: dict[str, str], code: str | None) -> str:
    """``code``'s label from a model's table, in the reader's language (the code when unknown)."""
    if not code:
        return ""
    text = table.get(code)
    return translate(text) if text is not None else code


def next_path(session: Session, order: Order) -> str | None:
    """The credit gate's path the order takes next (None once nothing more is committed)."""
    if order.status in ("cancelled", "rejected"):
        return None
    if order.status == "completed":
        return "reopen"
    if order.step == flow.FINANCE_CHECK:
        return "finance_check"
    if order.status in ("draft", "submitted"):
        return "confirm"
    if order.step == "logistics.outbound_check":
        return "release"
    if order.step in ("logistics.shipping",):
        return "shipment"
    return None


def _credit(session: Session, order: Order) -> dict[str, Any]:
    from plugins.billing import credit

    path = next_path(session, order)
    reasons = credit.localized_reasons(session, order, path) if path else []
    exception = credit.valid_exception(session, order.id) if path else False
    return {"path": path, "path_label": label(GATE_PATHS, path), "reasons": reasons, "exception": exception}


def _allocations(session: Session, invoice_ids: list[int]) -> list[dict[str, Any]]:
    if not invoice_ids:
        return []
    rows = session.execute(
        select(BillingAllocation, BillingPayment, BillingInvoice.number)
        .outerjoin(BillingPayment, BillingPayment.id == BillingAllocation.payment_id)
        .outerjoin(BillingInvoice, BillingInvoice.id == BillingAllocation.credit_note_id)
        .where(BillingAllocation.invoice_id.in_(invoice_ids))
        .order_by(BillingAllocation.effective_on, BillingAllocation.id)
    ).tuples()
    found = []
    for allocation, payment, credit_number in rows:
        if payment is not None:
            source = _(
                "Payment %(number)s (%(method)s)", number=payment.number, method=label(PAYMENT_METHODS, payment.method)
            )
            url = link(PAYMENT_PAGE, payment_id=payment.id)
        elif allocation.credit_note_id is not None:
            source, url = _("Credit note %(number)s", number=credit_number or ""), None
        else:
            source, url = _("Approved write-off"), None
        found.append({"allocation": allocation, "source": source, "url": url})
    return found


def _staff_panel(session: Session, order: Order, user: User) -> Panel | None:
    terms = session.scalars(select(BillingOrderTerms).where(BillingOrderTerms.order_id == order.id)).first()
    invoices = list(
        session.scalars(select(BillingInvoice).where(BillingInvoice.order_id == order.id).order_by(BillingInvoice.id))
    )
    write_offs = list(
        session.scalars(
            select(BillingWriteOff).where(BillingWriteOff.order_id == order.id).order_by(BillingWriteOff.id)
        )
    )
    in_settlement = order.status in ("confirmed", "completed")
    found = settlement.check(session, order) if in_settlement else None
    approver = None
    if terms is not None and terms.approved_by_id:
        approver = session.get(User, terms.approved_by_id)
    back = request.full_path if request else ""
    html = render_template(
        "billing/panel.html",
        order=order,
        terms=terms,
        approver=approver,
        credit=_credit(session, order) if user.can(flow.ACCOUNTS_READ) else None,
        invoices=[
            {
                "invoice": invoice,
                "url": link(INVOICE_PAGE, invoice_id=invoice.id),
                "write_off_url": url_for("billing.write_off_request", invoice_id=invoice.id, next=back)
                if user.can(flow.WRITE_OFF_REQUEST)
                and invoice.kind == "invoice"
                and invoice.status == "issued"
                and invoice.open_amount > 0
                else None,
            }
            for invoice in invoices
        ]
        if user.can(flow.INVOICES_READ)
        else None,
        allocations=_allocations(session, [i.id for i in invoices if i.kind == "invoice"])
        if user.can(flow.INVOICES_READ)
        else [],
        write_offs=write_offs if user.can(flow.INVOICES_READ) else [],
        check=found,
        invoice_url=link(NEW_INVOICE, order_id=order.id)
        if user.can(flow.INVOICES_MANAGE) and order.status == "confirmed"
        else None,
        account_url=link(ACCOUNT_PAGE, customer_id=order.customer_id) if user.can(flow.ACCOUNTS_READ) else None,
        term_label=lambda code: label(TERM_KINDS, code),
        invoice_kind_label=lambda code: label(INVOICE_KINDS, code),
        invoice_status_label=lambda code: label(INVOICE_STATUSES, code),
        invoice_colour_of=lambda code: INVOICE_COLOURS.get(code or "", "secondary"),
        write_off_status_label=lambda code: label(WRITE_OFF_STATUSES, code),
    )
    return Panel(_("Billing"), Markup(html), order=70, plugin="billing")


def panels(session: Session, order: Order, user: User) -> list[Panel]:
    """The order page's billing panel for staff with invoice or account read rights (none for portal users)."""
    if user is None or getattr(user, "customer_id", None) is not None:
        return []
    if not (user.can(flow.INVOICES_READ) or user.can(flow.ACCOUNTS_READ)):
        return []
    if not may_see_order(session, user, order):
        return []
    found = _staff_panel(session, order, user)
    return [found] if found is not None else []
