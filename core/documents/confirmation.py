"""The order confirmation (订单确认书): what its template needs besides the order itself.

The buyer's block (address, contact, tax id) and the company's terms text, set by an
administrator per language in the settings ``core.documents.terms_zh`` and
``core.documents.terms_en``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from core.labels import N_
from core.models import Order
from core.settings import get_setting

#: Setting keys of the terms printed on the order confirmation, per language.
TERMS_SETTINGS = {"zh_CN": "core.documents.terms_zh", "en": "core.documents.terms_en"}

DEFAULT_TERMS = {
    "zh_CN": (
        "1. 本确认书经供需双方签字盖章后生效，与双方合同具有同等效力。\n"
        "2. 交货期自需方确认本确认书之日起计算；如需变更，须书面提出并经双方确认。\n"
        "3. 需方如对质量有异议，应在收货后七日内书面提出。\n"
        "4. 未尽事宜由双方协商解决。"
    ),
    "en": (
        "1. This confirmation takes effect when signed and sealed by both parties and has the force of "
        "the parties' contract.\n"
        "2. The delivery time runs from the day the buyer confirms this document; changes must be "
        "requested in writing and agreed by both parties.\n"
        "3. Quality objections must be raised in writing within seven days of receipt.\n"
        "4. Anything not settled here is settled by agreement between the parties."
    ),
}

#: The settings' labels (translated on the settings screen).
TERMS_LABELS = {
    "zh_CN": N_("Order confirmation terms (Chinese)"),
    "en": N_("Order confirmation terms (English)"),
}


def buyer_address(order: Order) -> str:
    """The buyer's address: the customer's first address, else where the order ships."""
    customer = order.customer
    if customer.addresses:
        a = customer.addresses[0]
        return f"{a.province}{a.city if a.city != a.province else ''}{a.district}{a.address}"
    return f"{order.ship_to_province}{order.ship_to_city}{order.ship_to_address}"


def buyer_contact(order: Order) -> dict[str, str]:
    """Who to talk to at the buyer: the order's contact, else the customer's first contact."""
    contacts = order.customer.contacts
    name, phone = order.contact_name, order.contact_phone
    match = next((c for c in contacts if name and c.name == name), None)
    if not name and contacts:
        match = contacts[0]
        name, phone = match.name, match.phone
    return {"contact": name, "phone": phone, "email": match.email if match is not None else ""}


def confirmation_context(session: Session, order: Order) -> Mapping[str, Any]:
    """Template variables of the order confirmation: ``buyer`` and ``terms`` (per language)."""
    return {
        "buyer": {
            "name": order.customer.name,
            "address": buyer_address(order),
            "tax_id": order.customer.tax_id,
            **buyer_contact(order),
        },
        "terms": {language: str(get_setting(session, key)) for language, key in TERMS_SETTINGS.items()},
    }
