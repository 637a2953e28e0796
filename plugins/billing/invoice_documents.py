"""The invoice PDF (发票): one invoice or credit note, in Chinese or English.

Why: the customer receives each invoice as a document showing its number (发票号码),
type (增值税专用发票 / 普通发票), buyer and tax ID, lines with VAT rate, amount and VAT,
totals in figures and in Chinese capitals, and the due dates. An invoice belongs to an
order but an order can have many invoices, so the PDF is per invoice (the route
``/billing/invoices/<id>/pdf`` and ``GET /api/v1/billing/invoices/{id}/pdf``), not one of
core's order documents: ``DOCUMENTS`` stays empty. Rendering uses core's documents
(``environment`` + ``html_to_pdf``, the letterhead of ``documents/base.html``).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from core.clock import TIMEZONE_NAME, company_now
from core.contrib import DocumentType
from core.documents import check_language, environment, html_to_pdf, logo_data_uri, translations_for
from core.labels import N_
from core.models import Company, Customer, Order
from core.plugins import Registry
from core.services import NotFound
from plugins.billing import ledger
from plugins.billing.models import INVOICE_KINDS, INVOICE_TYPES, BillingInvoice

TEMPLATE = "billing/documents/invoice.html"
#: The documents' titles, by kind.
TITLES = {"invoice": N_("Invoice 发票"), "credit_note": N_("Credit note 红字发票")}
#: Billing prints no order-level document: the invoice PDF is per invoice.
DOCUMENTS: tuple[DocumentType, ...] = ()


def invoice_context(session: Session, registry: Registry, invoice: BillingInvoice, language: str) -> dict[str, Any]:
    """What the invoice template prints: the letterhead's variables and the invoice's."""
    check_language(language)
    company = session.get(Company, invoice.company_id)
    if company is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFound("company", invoice.company_id)
    tr = translations_for(registry, language)
    order = session.get(Order, invoice.order_id) if invoice.order_id is not None else None
    credited = session.get(BillingInvoice, invoice.credited_invoice_id) if invoice.credited_invoice_id else None
    balances = ledger.due_balances(session, [invoice.id])
    title = str(tr.gettext(TITLES.get(invoice.kind, TITLES["invoice"])))
    return {
        # documents/base.html prints ``order.number`` beside the title: the invoice's number.
        "order": SimpleNamespace(number=invoice.number or str(tr.gettext("Draft"))),
        "sales_order": order,
        "invoice": invoice,
        "customer": session.get(Customer, invoice.customer_id),
        "credited": credited,
        "dues": [(due, balances.get(due.id, due.amount)) for due in invoice.dues],
        "kind_label": str(tr.gettext(INVOICE_KINDS.get(invoice.kind, invoice.kind))),
        "type_label": str(tr.gettext(INVOICE_TYPES.get(invoice.invoice_type, invoice.invoice_type))),
        "document": SimpleNamespace(name="billing.invoice", label=TITLES.get(invoice.kind, TITLES["invoice"])),
        "title": title,
        "company": company,
        "logo": logo_data_uri(session, company),
        "printed_at": company_now(),
        "timezone": TIMEZONE_NAME,
        "language": language,
    }


def render_invoice_html(session: Session, registry: Registry, invoice: BillingInvoice, language: str = "zh_CN") -> str:
    """The invoice or credit note as HTML in ``language`` (``zh_CN`` or ``en``)."""
    context = invoice_context(session, registry, invoice, language)
    return environment(registry, language).get_template(TEMPLATE).render(**context)


def render_invoice_pdf(session: Session, registry: Registry, invoice: BillingInvoice, language: str = "zh_CN") -> bytes:
    """The invoice or credit note as PDF bytes in ``language``."""
    return html_to_pdf(render_invoice_html(session, registry, invoice, language))


def pdf_filename(invoice: BillingInvoice) -> str:
    """The download's file name: the number, or ``draft-<id>`` before issue."""
    return f"{invoice.number or f'draft-{invoice.id}'}.pdf"
