"""Checkout: turn a portal user's cart into a submitted order (IN-1 channel ``portal``, IN-3, IN-8).

:func:`place_order` checks everything first — the account may order, the posted
customer is its own, the header choices are the customer's own (address, contact,
payment method), every product is still offered and has a price, and the prices the
customer reviewed are still the applicable ones — and refuses with every reason at once
(:class:`CheckoutRefused`) before writing anything. Then it creates the order through
core's :func:`~core.services.orders.create_order` with the applicable prices computed
here, never taken from the form, and submits it, which runs intake's automatic
pre-check. All of it happens in the caller's transaction; the caller commits, or rolls
back on a refusal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from core.models import Customer, CustomerAddress, CustomerContact, Order, User
from core.models.order import PAYMENT_METHODS
from core.plugins import Registry
from core.services import ServiceError
from core.services.orders import create_order, load_order_input, take_action
from core.views.common import field_errors
from plugins.intake.models import IntakeCustomerProfile
from plugins.intake.portal import may_order
from plugins.intake.portal_cart import PricedCart

#: Form fields naming a customer: a portal user may only name its own.
CUSTOMER_FIELDS = ("customer", "customer_id")
#: The posted unit price of a cart line: ``price-<product id>`` (what the customer reviewed).
PRICE_FIELD = "price-{}"
#: The posted quantity of a cart line as reviewed: ``reviewed-<product id>``.
REVIEWED_FIELD = "reviewed-{}"
MAX_REFERENCE = 100
MAX_NOTE = 2000


@dataclass
class CheckoutRefused(Exception):
    """The order was not placed: messages beside fields and general ones, and the HTTP status."""

    general: list[str] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)
    status: int = 422

    def __str__(self) -> str:
        return " ".join([*self.general, *(m for ms in self.fields.values() for m in ms)])


@dataclass(frozen=True)
class Checkout:
    """The checkout form's values as posted (text), before they are checked."""

    requested_date: str = ""
    payment_method: str = ""
    address_id: str = ""
    contact_id: str = ""
    reference: str = ""
    note: str = ""
    urgent: bool = False

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Checkout:
        """The values of a posted form (missing fields are empty)."""
        return cls(
            requested_date=(form.get("requested_date") or "").strip(),
            payment_method=(form.get("payment_method") or "").strip(),
            address_id=(form.get("address") or "").strip(),
            contact_id=(form.get("contact") or "").strip(),
            reference=(form.get("reference") or "").strip(),
            note=(form.get("note") or "").strip(),
            urgent=(form.get("urgent") or "") in ("1", "y", "on", "true"),
        )


def allowed_payment_methods(session: Session, customer_id: int) -> list[str]:
    """The payment methods the customer may use: its intake profile's list, else all of core's."""
    profile = session.get(IntakeCustomerProfile, customer_id)
    listed = [m.strip() for m in (profile.payment_methods if profile else "").split(",") if m.strip()]
    return [m for m in PAYMENT_METHODS if m in listed] if listed else list(PAYMENT_METHODS)


def check_customer_fields(customer: Customer, form: Mapping[str, str]) -> None:
    """Refuse a form naming another customer than the user's own (by id or code)."""
    for name in CUSTOMER_FIELDS:
        value = (form.get(name) or "").strip()
        if value and value not in (str(customer.id), customer.code):
            raise CheckoutRefused(
                [
                    _(
                        "You can only place orders for your own company (%(code)s); nothing was ordered.",
                        code=customer.code,
                    )
                ],
                status=403,
            )


def _pick(rows: list[Any], raw: str) -> Any:
    return next((row for row in rows if raw.isdigit() and row.id == int(raw)), None)


def _check_header(
    session: Session, customer: Customer, values: Checkout, today: dt.date, errors: dict[str, list[str]]
) -> tuple[dt.date | None, CustomerAddress | None, CustomerContact | None]:
    requested: dt.date | None = None
    if not values.requested_date:
        errors["requested_date"] = [_("Choose the delivery date you need.")]
    else:
        try:
            requested = dt.date.fromisoformat(values.requested_date)
        except ValueError:
            errors["requested_date"] = [_("“%(value)s” is not a date.", value=values.requested_date)]
        else:
            if requested < today:
                errors["requested_date"] = [_("The requested date cannot be in the past.")]
    allowed = allowed_payment_methods(session, customer.id)
    if values.payment_method not in allowed:
        errors["payment_method"] = [_("Choose one of the payment methods offered.")]
    address = _pick(customer.addresses, values.address_id)
    if address is None:
        errors["address"] = [_("Choose one of your delivery addresses.")]
    contact = _pick(customer.contacts, values.contact_id)
    if contact is None:
        errors["contact"] = [_("Choose one of your contacts.")]
    if len(values.reference) > MAX_REFERENCE:
        errors["reference"] = [_("At most %(count)s characters.", count=MAX_REFERENCE)]
    if len(values.note) > MAX_NOTE:
        errors["note"] = [_("At most %(count)s characters.", count=MAX_NOTE)]
    return requested, address, contact


def _posted_number(form: Mapping[str, str], name: str) -> Decimal | None:
    try:
        value = Decimal((form.get(name) or "").strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _reviewed_products(form: Mapping[str, str]) -> set[str]:
    return {key.split("-", 1)[1] for key in form if key.startswith(REVIEWED_FIELD.format(""))}


def check_lines(cart: PricedCart, form: Mapping[str, str]) -> list[str]:
    """Why the cart cannot be ordered as reviewed: empty, products gone, no price, prices changed."""
    if not cart.lines and not cart.unavailable:
        return [_("Your cart is empty.")]
    problems = [
        _("Product %(sku)s is no longer offered; remove it from your cart.", sku=sku or "?")
        for sku in cart.unavailable.values()
    ]
    problems += [
        _("No price applies to %(sku)s for your company; please contact us for a quote.", sku=line.product.sku)
        for line in cart.unpriced
    ]
    reviewed = {str(line.product.id) for line in cart.lines} | {str(pid) for pid in cart.unavailable}
    if reviewed != _reviewed_products(form) or any(
        _posted_number(form, REVIEWED_FIELD.format(line.product.id)) != line.quantity for line in cart.lines
    ):
        problems.append(_("Your cart changed since you reviewed it. Please review your cart and submit again."))
    changed = [
        line
        for line in cart.lines
        if line.price is not None and _posted_number(form, PRICE_FIELD.format(line.product.id)) != line.price.unit_price
    ]
    if changed:
        problems.append(
            _("Prices have changed since you reviewed your cart. Please review your cart and submit again.")
        )
    return problems


def order_input(
    customer: Customer, cart: PricedCart, values: Checkout, requested: dt.date, address: Any, contact: Any
) -> dict[str, Any]:
    """The order in the API's JSON shape: the customer's own, channel portal, today's applicable prices."""
    street = " ".join(part for part in (address.district, address.address) if part)
    return {
        "customer": customer.id,
        "channel": "portal",
        "reference": values.reference,
        "requested_date": requested.isoformat(),
        "payment_method": values.payment_method,
        "currency": cart.currency,
        "urgency": "urgent" if values.urgent else "normal",
        "contact_name": contact.name,
        "contact_phone": contact.phone,
        "note": values.note,
        "ship_to": {
            "contact": contact.name,
            "phone": contact.phone,
            "province": address.province,
            "city": address.city,
            "address": street,
        },
        "lines": [
            {
                "product": line.product.id,
                "quantity": str(line.quantity),
                "unit_price": str(line.price.unit_price),
            }
            for line in cart.lines
            if line.price is not None
        ],
    }


def place_order(
    session: Session,
    registry: Registry,
    actor: User,
    cart: PricedCart,
    form: Mapping[str, str],
    today: dt.date,
) -> Order:
    """Create and submit the order for ``cart`` as reviewed in ``form``; :class:`CheckoutRefused` otherwise.

    The order is the actor's own customer's, on channel ``portal``, with each line at the
    price that applies today (checked against the reviewed ``price-<id>`` values: a
    difference means the form is stale or tampered with, and nothing is written).
    Submitting runs the automatic pre-check, so the order comes back at the manual
    check or rejected. Nothing is committed here.
    """
    if actor.customer_id is None:
        raise CheckoutRefused([_("Only a customer's portal users order here.")], status=403)
    customer = session.get(Customer, actor.customer_id)
    if customer is None or not customer.active:
        raise CheckoutRefused([_("Your company's account is not active; please contact us.")], status=403)
    check_customer_fields(customer, form)
    if not may_order(session, actor):
        raise CheckoutRefused([view_only_message()], status=403)
    values = Checkout.from_form(form)
    errors: dict[str, list[str]] = {}
    requested, address, contact = _check_header(session, customer, values, today, errors)
    problems = check_lines(cart, form)
    if errors or problems or requested is None:
        raise CheckoutRefused(problems, errors)
    try:
        data = load_order_input(order_input(customer, cart, values, requested, address, contact))
        order = create_order(session, actor, data)
        take_action(session, registry, actor, order, "submit")
    except ServiceError as exc:
        found = field_errors(exc.details, groups=("lines",))
        general = [*found.general, *(m for ms in found.fields.values() for m in ms)]
        general += [m for rows in found.rows.values() for row in rows.values() for ms in row.values() for m in ms]
        raise CheckoutRefused(
            general or [exc.message], status=exc.status if exc.status in (403, 409) else 422
        ) from None
    return order


def view_only_message() -> str:
    """What a view-only portal account is told when it tries to order."""
    return _(
        "This is a view-only account: you can browse the catalogue and follow your company's orders, "
        "but only your company's ordering accounts can place orders."
    )
