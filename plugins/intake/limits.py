"""Products' ordering rules and customers' purchase limits: reading, checking and keeping them (IN-3).

- A product's **ordering rules** (:class:`IntakeProductRule`): minimum and maximum quantity
  per order, lead time in working days, whether it is a regular product (常规产品).
- A customer's **purchase limits** (:class:`IntakePurchaseLimit`): at most so much of a
  product per calendar month, quarter or year (sales policy "purchase limits"). What a
  customer already ordered in a period counts every order not in draft, cancelled or
  rejected whose order day (:func:`plugins.intake.pricing.order_day`) lies in it.

The services check the actor's permission (``intake.prices.read`` to see,
``intake.prices.manage`` to change), validate everything before writing anything, write
an audit entry (``intake_product_rule``, ``intake_purchase_limit``) and never commit.
Their messages are English ``N_`` strings that screens translate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.clock import day_start
from core.labels import N_
from core.models import Customer, Order, OrderLine, Product, User
from core.services import NotFound, ServiceError, audit
from plugins.intake.models import LIMIT_PERIODS, IntakeProductRule, IntakePurchaseLimit

READ = "intake.prices.read"
MANAGE = "intake.prices.manage"
#: Orders in these statuses do not count towards a purchase limit.
NOT_COUNTED = ("draft", "cancelled", "rejected")
#: Quantities are kept with 3 decimals and at most 13 digits before the point.
QUANTITY_PLACES = 3
MAX_QUANTITY = Decimal(10) ** 13
MAX_LEAD_TIME = 365

#: Labels of the limit periods, translated where shown.
PERIOD_LABELS = {"month": N_("per month"), "quarter": N_("per quarter"), "year": N_("per year")}

REQUIRED = N_("Required.")
NOT_QUANTITY = N_("Enter a number, 0 or more.")
NEGATIVE = N_("Must not be negative.")
TOO_PRECISE = "Too precise: at most 3 decimal places."
TOO_LARGE = "Too large: at most 13 digits before the decimal point."
MIN_ABOVE_MAX = N_("The minimum must not be above the maximum.")
LEAD_TIME = N_("Enter a whole number of working days from 0 to 365.")
PERIOD = N_("Choose month, quarter or year.")
DUPLICATE_LIMIT = N_("This customer already has a limit for this product and period.")


def plain_quantity(value: Decimal) -> str:
    """``value`` without trailing zeros (``100``, ``2.5``): how quantities read in messages."""
    return format(value.normalize(), "f")


# --- periods -------------------------------------------------------------------------------


def period_bounds(day: dt.date, period: str) -> tuple[dt.date, dt.date]:
    """The calendar ``period`` (month, quarter, year) holding ``day``: first day and the day after."""
    if period == "month":
        start = day.replace(day=1)
    elif period == "quarter":
        start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    elif period == "year":
        start = dt.date(day.year, 1, 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    months = {"month": 1, "quarter": 3, "year": 12}[period]
    month = start.month - 1 + months
    return start, dt.date(start.year + month // 12, month % 12 + 1, 1)


def period_name(day: dt.date, period: str) -> str:
    """How the period holding ``day`` is written: ``2026-12``, ``2026-Q4`` or ``2026``."""
    if period == "month":
        return f"{day.year}-{day.month:02d}"
    if period == "quarter":
        return f"{day.year}-Q{(day.month - 1) // 3 + 1}"
    return str(day.year)


def ordered_in_period(
    session: Session,
    customer_id: int,
    product_id: int,
    period: str,
    day: dt.date,
    exclude_order_id: int | None = None,
) -> Decimal:
    """How much of the product the customer ordered in the period holding ``day``.

    Counts the lines of the customer's orders that are not draft, cancelled or rejected
    and were entered (company time) in that calendar period, except ``exclude_order_id``.
    """
    start, end = period_bounds(day, period)
    query = (
        select(func.coalesce(func.sum(OrderLine.quantity), 0))
        .join(Order, OrderLine.order_id == Order.id)
        .where(
            Order.customer_id == customer_id,
            OrderLine.product_id == product_id,
            Order.status.not_in(NOT_COUNTED),
            Order.created_at >= day_start(start),
            Order.created_at < day_start(end),
        )
    )
    if exclude_order_id is not None:
        query = query.where(Order.id != exclude_order_id)
    return Decimal(str(session.scalar(query) or 0))


def purchase_limits_for(session: Session, customer_id: int, product_ids: Sequence[int]) -> list[IntakePurchaseLimit]:
    """The customer's limits on any of ``product_ids``, by product and period."""
    if not product_ids:
        return []
    order = {period: n for n, period in enumerate(LIMIT_PERIODS)}
    limits = session.scalars(
        select(IntakePurchaseLimit).where(
            IntakePurchaseLimit.customer_id == customer_id, IntakePurchaseLimit.product_id.in_(list(product_ids))
        )
    )
    return sorted(limits, key=lambda limit: (limit.product_id, order.get(limit.period, 9)))


# --- validation helpers ----------------------------------------------------------------------


def _require(actor: User, code: str) -> None:
    if not actor.can(code):
        raise ServiceError("forbidden", f"you need the permission {code}", status=403)


def _invalid(errors: dict[str, list[str]]) -> ServiceError:
    return ServiceError("invalid", "the data is not valid; nothing was saved", errors)


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


def _quantity(
    data: Mapping[str, Any], key: str, errors: dict[str, list[str]], required: bool = False
) -> Decimal | None:
    """A quantity field: blank is None (or an error when required); else ≥ 0 with ≤ 3 decimals."""
    raw = _text(data, key)
    if raw == "":
        if required:
            errors[key] = [REQUIRED]
        return None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        errors[key] = [NOT_QUANTITY]
        return None
    if not number.is_finite():
        errors[key] = [NOT_QUANTITY]
    elif number < 0:
        errors[key] = [NEGATIVE]
    elif number >= MAX_QUANTITY:
        errors[key] = [TOO_LARGE]
    elif number != number.quantize(Decimal(1).scaleb(-QUANTITY_PLACES)):
        errors[key] = [TOO_PRECISE]
    else:
        return number
    return None


# --- products' ordering rules ----------------------------------------------------------------


@dataclass(frozen=True)
class ProductRuleRow:
    """A product with its ordering rules (``rule`` is None when it has none: no limits)."""

    product: Product
    rule: IntakeProductRule | None


def product_rules(session: Session, actor: User) -> list[ProductRuleRow]:
    """Every product by SKU, with its ordering rules."""
    _require(actor, READ)
    rules = {rule.product_id: rule for rule in session.scalars(select(IntakeProductRule))}
    products = session.scalars(select(Product).order_by(Product.sku))
    return [ProductRuleRow(product, rules.get(product.id)) for product in products]


def get_product(session: Session, actor: User, product_id: int) -> Product:
    """A product whose ordering rules are shown or changed; 404 when there is none."""
    _require(actor, READ)
    product = session.get(Product, product_id)
    if product is None:
        raise NotFound("product", product_id)
    return product


def product_rule_of(session: Session, product_id: int) -> IntakeProductRule | None:
    """The product's ordering rules, None when it has none."""
    return session.get(IntakeProductRule, product_id)


def product_rule_values(session: Session, data: Mapping[str, Any]) -> dict[str, Any]:
    """The validated ordering rules in ``data`` (form text or JSON), or a 422 listing each bad field.

    ``min_quantity`` and ``max_quantity`` may be blank (no bound), else a number ≥ 0 with
    at most 3 decimals and the minimum not above the maximum; ``lead_time_days`` is a
    whole number of working days from 0 to 365 (blank: 0); ``regular`` is a flag.
    """
    errors: dict[str, list[str]] = {}
    minimum = _quantity(data, "min_quantity", errors)
    maximum = _quantity(data, "max_quantity", errors)
    if minimum is not None and maximum is not None and minimum > maximum:
        errors["min_quantity"] = [MIN_ABOVE_MAX]
    raw_lead = _text(data, "lead_time_days") or "0"
    lead_time = int(raw_lead) if raw_lead.isdigit() and int(raw_lead) <= MAX_LEAD_TIME else None
    if lead_time is None:
        errors["lead_time_days"] = [LEAD_TIME]
    regular = data.get("regular", False)
    if isinstance(regular, str):
        regular = regular.strip().lower() in ("1", "on", "true", "yes", "y")
    if errors:
        raise _invalid(errors)
    return {"min_quantity": minimum, "max_quantity": maximum, "lead_time_days": lead_time, "regular": bool(regular)}


def save_product_rule(session: Session, actor: User, product: Product, data: Mapping[str, Any]) -> IntakeProductRule:
    """Set a product's ordering rules (created on first save); validated first, audited, not committed."""
    _require(actor, MANAGE)
    values = product_rule_values(session, data)
    rule = session.get(IntakeProductRule, product.id)
    if rule is None:
        rule = IntakeProductRule(product_id=product.id, **values)
        session.add(rule)
        session.flush()
        changes: dict[str, Any] = {"sku": product.sku, **values}
        audit.record(session, actor, "intake_product_rule", product.id, "create", changes)
        return rule
    changes = audit.diff(rule, values)
    for key, value in values.items():
        setattr(rule, key, value)
    if changes:
        session.flush()
        audit.record(session, actor, "intake_product_rule", product.id, "change", {"sku": product.sku, **changes})
    return rule


# --- customers' purchase limits --------------------------------------------------------------


def get_customer(session: Session, actor: User, customer_id: int) -> Customer:
    """A customer whose purchase limits are shown or changed; 404 when there is none."""
    _require(actor, READ)
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound("customer", customer_id)
    return customer


def customer_limits(session: Session, actor: User, customer: Customer) -> list[IntakePurchaseLimit]:
    """The customer's purchase limits, by product SKU and period (month, quarter, year)."""
    _require(actor, READ)
    rows = session.execute(
        select(IntakePurchaseLimit, Product.sku)
        .join(Product, IntakePurchaseLimit.product_id == Product.id)
        .where(IntakePurchaseLimit.customer_id == customer.id)
    )
    order = {period: n for n, period in enumerate(LIMIT_PERIODS)}
    return [limit for limit, _sku in sorted(rows, key=lambda row: (row[1], order.get(row[0].period, 9)))]


def limit_counts(session: Session, actor: User) -> dict[int, int]:
    """How many purchase limits each customer has (customers without any are left out)."""
    _require(actor, READ)
    rows = session.execute(
        select(IntakePurchaseLimit.customer_id, func.count()).group_by(IntakePurchaseLimit.customer_id)
    )
    return {customer_id: count for customer_id, count in rows}


def add_purchase_limit(
    session: Session, actor: User, customer: Customer, data: Mapping[str, Any]
) -> IntakePurchaseLimit:
    """Give the customer a limit: ``product`` (SKU), ``period`` and ``max_quantity``.

    One limit per product and period: a second one is refused with a message on the
    product. Validated first, audited, not committed.
    """
    _require(actor, MANAGE)
    errors: dict[str, list[str]] = {}
    sku = _text(data, "product")
    product = session.scalar(select(Product).where(Product.sku == sku)) if sku else None
    if not sku:
        errors["product"] = [REQUIRED]
    elif product is None:
        errors["product"] = [f"Unknown product {sku}."]
    period = _text(data, "period")
    if period not in LIMIT_PERIODS:
        errors["period"] = [PERIOD]
    maximum = _quantity(data, "max_quantity", errors, required=True)
    if product is not None and period in LIMIT_PERIODS:
        taken = session.scalar(
            select(IntakePurchaseLimit.id).where(
                IntakePurchaseLimit.customer_id == customer.id,
                IntakePurchaseLimit.product_id == product.id,
                IntakePurchaseLimit.period == period,
            )
        )
        if taken is not None:
            errors["product"] = [DUPLICATE_LIMIT]
    if errors or product is None or maximum is None:
        raise _invalid(errors)
    limit = IntakePurchaseLimit(customer_id=customer.id, product_id=product.id, period=period, max_quantity=maximum)
    session.add(limit)
    session.flush()
    changes = {"customer": customer.code, "product": product.sku, "period": period, "max_quantity": maximum}
    audit.record(session, actor, "intake_purchase_limit", limit.id, "create", changes)
    return limit


def delete_purchase_limit(session: Session, actor: User, customer: Customer, limit_id: int) -> None:
    """Remove one of the customer's limits (404 when it is not the customer's); audited, not committed."""
    _require(actor, MANAGE)
    limit = session.get(IntakePurchaseLimit, limit_id)
    if limit is None or limit.customer_id != customer.id:
        raise NotFound("purchase limit", limit_id)
    product = session.get(Product, limit.product_id)
    changes = {
        "customer": customer.code,
        "product": product.sku if product else limit.product_id,
        "period": limit.period,
        "max_quantity": limit.max_quantity,
    }
    session.delete(limit)
    session.flush()
    audit.record(session, actor, "intake_purchase_limit", limit_id, "delete", changes)
