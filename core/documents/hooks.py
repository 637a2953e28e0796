"""Core's documents service: what it contributes through the plugin hooks (registered as ``core+documents``).

The two document types core prints — the internal order sheet (订单) and the order
confirmation sent to the customer (订单确认书) — the permissions to print the order
sheet (staff only) and to e-mail documents,
the terms printed on the confirmation, the e-mail template, the documents API and the
order page's Documents panel.
"""

from __future__ import annotations

from flask import Blueprint, Flask
from sqlalchemy.orm import Session

from core.contrib import DocumentType, NotificationTemplate, Panel, Permission, Setting
from core.documents.confirmation import DEFAULT_TERMS, TERMS_LABELS, TERMS_SETTINGS, confirmation_context
from core.hookspecs import hookimpl
from core.labels import N_
from core.models import Order, User

#: The permission to e-mail an issued document to the order's customer.
SEND_PERMISSION = "documents.send"
#: The permission to print the internal order sheet: staff only (a customer's portal
#: user reads the order and prints its confirmation, not the company's internal sheet).
PRINT_SHEET_PERMISSION = "orders.print_sheet"
#: The roles that print the order sheet unless an administrator changes it: all staff.
STAFF_ROLES = ("admin", "general_manager", "sales_manager", "sales", "order_clerk", "warehouse", "finance", "auditor")
#: The notification that carries a document to the customer.
DOCUMENT_ISSUED = "document_issued"

DOCUMENT_TYPES = (
    DocumentType(
        "order_sheet", N_("Order sheet"), "documents/order_sheet.html", PRINT_SHEET_PERMISSION, for_customer=False
    ),
    DocumentType(
        "order_confirmation",
        N_("Order confirmation"),
        "documents/order_confirmation.html",
        "orders.read",
        context=confirmation_context,
    ),
)


@hookimpl
def ordo_register_documents() -> list[DocumentType]:
    return list(DOCUMENT_TYPES)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    return [
        Permission(
            SEND_PERMISSION,
            N_("E-mail documents to customers"),
            ("admin", "sales_manager", "sales", "order_clerk"),
        ),
        Permission(PRINT_SHEET_PERMISSION, N_("Print the internal order sheet"), STAFF_ROLES),
    ]


@hookimpl
def ordo_register_settings() -> list[Setting]:
    return [
        Setting(
            key,
            str,
            DEFAULT_TERMS[language],
            TERMS_LABELS[language],
            N_("Printed under the lines of every order confirmation in this language; leave empty to print none."),
        )
        for language, key in TERMS_SETTINGS.items()
    ]


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    return [
        NotificationTemplate(
            DOCUMENT_ISSUED,
            subject={
                "zh_CN": "{{ company.name }}：订单 {{ order.number }} 的{{ document_label }}",
                "en": "{{ company.name }}: {{ document_label }} for order {{ order.number }}",
            },
            body={
                "zh_CN": (
                    "您好：\n\n"
                    "随函附上订单 {{ order.number }} 的{{ document_label }}（PDF 文件），请查收。\n"
                    "如有疑问，请与我们联系。\n\n"
                    "{{ company.name }}\n"
                ),
                "en": (
                    "Hello,\n\n"
                    "Please find attached the {{ document_label }} for order {{ order.number }} (PDF).\n"
                    "If anything is unclear, please contact us.\n\n"
                    "{{ company.name }}\n"
                ),
            },
            label=N_("A document e-mailed to the customer"),
        )
    ]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    from core.documents.api import blp

    return [blp]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    from core.documents.panel import documents_panel
    from core.services.orders import may_see_order

    if not may_see_order(session, user, order):
        return []

    panel = documents_panel(session, order, user)
    return [panel] if panel is not None else []
