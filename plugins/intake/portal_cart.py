"""The portal's cart (购物车): product ids and quantities kept in the browser session, priced on the server.

The cart holds only ``product id → quantity`` (as text) and the id of the user it belongs
to; never a price. Every page that shows it prices it again with
:func:`plugins.intake.pricing.applicable_price` for the customer, today and the
quantity, so what a customer sees is what the order would be priced at now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from flask import session as browser_session
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Product
from core.models.order import to_cents
from plugins.intake.pricing import AppliedPrice, applicable_price

#: The browser-session key of the cart.
CART_KEY = "intake_portal_cart"
#: The most lines a cart holds (the session cookie stays small).
MAX_LINES = 100
#: Quantities are stored with at most 3 decimals and 13 digits before the point (Numeric(16, 3)).
QUANTITY_PLACES = 3
QUANTITY_LIMIT = Decimal(10) ** 13


class QuantityError(ValueError):
    """A quantity that cannot be ordered; ``str()`` is the message for the field, translated."""


def parse_quantity(text: str | None) -> Decimal:
    """The quantity typed in ``text``; :class:`QuantityError` saying why when it is not one."""
    raw = (text or "").strip().replace(",", "")
    if not raw:
        raise QuantityError(_("Enter a quantity."))
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise QuantityError(_("“%(value)s” is not a number; enter a quantity such as 2 or 2.5.", value=raw)) from None
    if not value.is_finite():
        raise QuantityError(_("“%(value)s” is not a number; enter a quantity such as 2 or 2.5.", value=raw))
    if value <= 0:
        raise QuantityError(_("The quantity must be greater than 0."))
    if value >= QUANTITY_LIMIT:
        raise QuantityError(_("The quantity is too large."))
    if value != value.quantize(Decimal(1).scaleb(-QUANTITY_PLACES)):
        raise QuantityError(_("Use at most %(places)s decimal places.", places=QUANTITY_PLACES))
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value


# --- storage in the browser session --------------------------------------------------------


def _owner() -> int | None:
    return getattr(current_user, "id", None) if current_user.is_authenticated else None


def cart_items() -> dict[int, Decimal]:
    """The logged-in user's cart: product id → quantity (empty when the cart is someone else's)."""
    stored = browser_session.get(CART_KEY)
    if not isinstance(stored, dict) or stored.get("user") != _owner():
        return {}
    items: dict[int, Decimal] = {}
    for key, value in (stored.get("items") or {}).items():
        try:
            items[int(key)] = parse_quantity(str(value))
        except (ValueError, QuantityError):
            continue  # a damaged entry is dropped, never trusted
    return items


def save_cart(items: dict[int, Decimal]) -> None:
    """Keep ``items`` as the logged-in user's cart."""
    browser_session[CART_KEY] = {"user": _owner(), "items": {str(pid): str(qty) for pid, qty in items.items()}}


def clear_cart() -> None:
    """Empty the cart (after an order was placed)."""
    browser_session.pop(CART_KEY, None)


def cart_count() -> int:
    """How many lines the cart holds (shown beside Cart in the navigation)."""
    return len(cart_items())


def add_to_cart(product_id: int, quantity: Decimal) -> dict[int, Decimal]:
    """Add ``quantity`` of a product to the cart (on top of what is there); the new cart."""
    items = cart_items()
    if product_id not in items and len(items) >= MAX_LINES:
        raise QuantityError(_("The cart holds at most %(count)s products; place an order first.", count=MAX_LINES))
    total = items.get(product_id, Decimal("0")) + quantity
    if total >= QUANTITY_LIMIT:
        raise QuantityError(_("The quantity is too large."))
    items[product_id] = total
    save_cart(items)
    return items


# --- pricing ------------------------------------------------------------------------------


def portal_price(
    session: Session, customer_id: int, product_id: int, quantity: Decimal | int, on: dt.date, currency: str
) -> AppliedPrice | None:
    """The price the customer would pay, or None when none applies ("price on request").

    A list price of 0 means the product has no public price: without a price list for
    the customer it cannot be ordered in the portal.
    """
    price = applicable_price(session, customer_id, product_id, quantity, on, currency)
    return price if price is not None and price.unit_price > 0 else None


@dataclass
class CartLine:
    """One product of the cart with the price that applies to it now (``price`` None: none applies)."""

    product: Product
    quantity: Decimal
    price: AppliedPrice | None

    @property
    def amount(self) -> Decimal | None:
        """Quantity × unit price, to the cent (untaxed), or None without a price."""
        return None if self.price is None else to_cents(self.quantity * self.price.unit_price)

    @property
    def tax(self) -> Decimal | None:
        """The line's tax at the product's rate, to the cent, as an order would count it."""
        amount = self.amount
        return None if amount is None else to_cents(amount * self.product.tax_rate / 100)


@dataclass
class PricedCart:
    """The cart priced for one customer on one day: lines, products no longer offered, totals."""

    lines: list[CartLine] = field(default_factory=list)
    #: Products in the cart that are deactivated or no longer exist (they cannot be ordered):
    #: product id → SKU ('' for one that no longer exists).
    unavailable: dict[int, str] = field(default_factory=dict)
    currency: str = "CNY"

    @property
    def unpriced(self) -> list[CartLine]:
        """Lines without an applicable price."""
        return [line for line in self.lines if line.price is None]

    @property
    def untaxed(self) -> Decimal:
        """The sum of the priced lines' amounts."""
        return sum((line.amount or Decimal("0") for line in self.lines), Decimal("0"))

    @property
    def tax(self) -> Decimal:
        """The sum of the priced lines' taxes."""
        return sum((line.tax or Decimal("0") for line in self.lines), Decimal("0"))

    @property
    def total(self) -> Decimal:
        """Untaxed amount plus tax."""
        return self.untaxed + self.tax


def price_cart(session: Session, customer_id: int, items: dict[int, Decimal], on: dt.date, currency: str) -> PricedCart:
    """Price ``items`` for ``customer_id`` on day ``on`` in ``currency``, in the order they were added."""
    priced = PricedCart(currency=currency)
    if not items:
        return priced
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(list(items))))}
    for product_id, quantity in items.items():
        product = products.get(product_id)
        if product is None or not product.active:
            priced.unavailable[product_id] = product.sku if product is not None else ""
            continue
        price = portal_price(session, customer_id, product_id, quantity, on, currency)
        priced.lines.append(CartLine(product, quantity, price))
    return priced
