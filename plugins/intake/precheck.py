"""The automatic pre-check of an order (DOMAIN.md IN-3, IN-4): rules giving pass / warn / reject.

A rule is a :class:`PrecheckRule`: a code and a function ``(session, order, settings)``
returning :class:`core.contrib.Finding` objects, each naming the field it is about
(``payment_method``, ``lines[0].unit_price``…). Intake's built-in rules are in
:data:`BUILTIN_RULES`; other plugins add theirs through the hook
``ordo_intake_precheck_rules`` (:mod:`plugins.intake.hookspecs`). Each rule is switched
off by the bool setting ``intake.precheck.rule.<code>``. :func:`run_precheck` runs them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import add_working_days
from core.clock import company_now, day_start
from core.contrib import Finding, Setting
from core.labels import N_
from core.models import Order
from core.settings import get_setting as _get_setting
from core.settings import session_registry
from plugins.intake.models import IntakeCustomerProfile, IntakeProductRule
from plugins.intake.pricing import order_day, price_for_line

if TYPE_CHECKING:
    from core.plugins import Registry

PLUGIN = "intake"
RULE_SETTING = "intake.precheck.rule.{}"
TOLERANCE = "intake.precheck.price_tolerance_pct"
DUPLICATE_WINDOW = "intake.precheck.duplicate_window_days"
#: Orders in these statuses are not counted as duplicates.
CLOSED = ("cancelled", "rejected")


@dataclass
class PrecheckSettings:
    """What a rule may read besides the order: settings (by key) and today's company date."""

    session: Session
    registry: Registry
    today: dt.date

    def get(self, key: str, default: Any = None) -> Any:
        """The value of setting ``key``, or ``default`` when no enabled plugin registers it."""
        if key not in self.registry.settings:
            return default
        return _get_setting(self.session, key, self.registry)

    def enabled(self, code: str) -> bool:
        """Whether the rule ``code`` runs (on unless ``intake.precheck.rule.<code>`` is off)."""
        return bool(self.get(RULE_SETTING.format(code), True))


@dataclass(frozen=True)
class PrecheckRule:
    """A pre-check rule: ``check(session, order, settings) -> list[Finding]``."""

    code: str
    label: str
    check: Callable[[Session, Order, PrecheckSettings], list[Finding]] = field(repr=False)
    plugin: str = PLUGIN


def _finding(level: str, message: str, field_name: str | None = None) -> Finding:
    return Finding(level, message, field_name, PLUGIN)


def _passed(message: str, field_name: str | None = None) -> list[Finding]:
    return [_finding("pass", message, field_name)]


def _or_pass(findings: list[Finding], message: str, field_name: str | None = None) -> list[Finding]:
    return findings or _passed(message, field_name)


# --- the built-in rules ------------------------------------------------------------------


def check_required(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Key information is present: customer, contact, ship-to address, lines, quantities, date, payment."""
    missing: list[tuple[str, str]] = []
    if order.customer_id is None:
        missing.append(("customer", "The customer is missing."))
    if not (order.contact_name or order.ship_to_contact).strip():
        missing.append(("contact_name", "The contact name is missing."))
    if not (order.contact_phone or order.ship_to_phone).strip():
        missing.append(("contact_phone", "The contact phone is missing."))
    if not order.ship_to_address.strip():
        missing.append(("ship_to_address", "The ship-to address is missing."))
    if not order.lines:
        missing.append(("lines", "The order has no lines."))
    for i, line in enumerate(order.lines):
        if line.quantity is None or line.quantity <= 0:
            missing.append((f"lines[{i}].quantity", f"Line {i + 1}: the quantity must be greater than 0."))
    if order.requested_date is None:
        missing.append(("requested_date", "The requested date is missing."))
    if not order.payment_method.strip():
        missing.append(("payment_method", "The payment method is missing."))
    found = [_finding("reject", message, name) for name, message in missing]
    return _or_pass(found, "Key information is complete.")


def _profile(session: Session, order: Order) -> IntakeCustomerProfile | None:
    return session.get(IntakeCustomerProfile, order.customer_id) if order.customer_id else None


def check_customer(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The customer is active and not blocked (a blocked customer's reason is shown)."""
    customer = order.customer
    if customer is None:
        return [_finding("reject", "The customer does not exist.", "customer")]
    if not customer.active:
        return [_finding("reject", f"Customer {customer.code} is inactive.", "customer")]
    profile = _profile(session, order)
    if profile is not None and profile.blocked:
        reason = profile.blocked_reason.strip() or "no reason given"
        return [_finding("reject", f"Customer {customer.code} is blocked: {reason}.", "customer")]
    return _passed(f"Customer {customer.code} is active.", "customer")


def check_product(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Every line's product exists and is active."""
    found = []
    for i, line in enumerate(order.lines):
        if line.product is None:
            found.append(_finding("reject", f"Line {i + 1}: the product does not exist.", f"lines[{i}].product"))
        elif not line.product.active:
            message = f"Line {i + 1}: product {line.product.sku} is inactive."
            found.append(_finding("reject", message, f"lines[{i}].product"))
    return _or_pass(found, "Every product is active.", "lines")


def check_price(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Each unit price equals the applicable price within the tolerance (else warn with both)."""
    tolerance = Decimal(str(settings.get(TOLERANCE, 0.0)))
    found = []
    for i, line in enumerate(order.lines):
        if line.product is None:
            continue
        applied = price_for_line(session, order, line)
        name = f"lines[{i}].unit_price"
        if applied is None:
            message = f"Line {i + 1}: no price applies to {line.product.sku} in {order.currency}."
            found.append(_finding("warn", message, name))
        elif abs(line.unit_price - applied.unit_price) > applied.unit_price * tolerance / 100:
            message = (
                f"Line {i + 1}: unit price {line.unit_price:f} differs from the applicable "
                f"{applied.kind} price {applied.unit_price:f} {applied.currency}."
            )
            found.append(_finding("warn", message, name))
    return _or_pass(found, "Every unit price is the applicable price.", "lines")


def _rule(session: Session, product_id: int) -> IntakeProductRule | None:
    return session.get(IntakeProductRule, product_id)


def check_quantity(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Each quantity lies within the product's minimum and maximum per order."""
    found = []
    for i, line in enumerate(order.lines):
        rule = _rule(session, line.product_id)
        if rule is None or line.quantity is None:
            continue
        sku = line.product.sku if line.product else line.product_id
        if rule.min_quantity is not None and line.quantity < rule.min_quantity:
            message = f"Line {i + 1}: {line.quantity:f} of {sku} is below the minimum {rule.min_quantity:f}."
            found.append(_finding("reject", message, f"lines[{i}].quantity"))
        if rule.max_quantity is not None and line.quantity > rule.max_quantity:
            message = f"Line {i + 1}: {line.quantity:f} of {sku} is above the maximum {rule.max_quantity:f}."
            found.append(_finding("reject", message, f"lines[{i}].quantity"))
    return _or_pass(found, "Every quantity is within its limits.", "lines")


def check_payment(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The payment method is one the customer's profile allows (any when it lists none)."""
    profile = _profile(session, order)
    allowed = [m.strip() for m in (profile.payment_methods if profile else "").split(",") if m.strip()]
    if allowed and order.payment_method not in allowed:
        message = f"Payment method {order.payment_method!r} is not allowed for this customer ({', '.join(allowed)})."
        return [_finding("reject", message, "payment_method")]
    return _passed("The payment method is allowed.", "payment_method")


def check_requested_date(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The requested date is not in the past (company time)."""
    if order.requested_date is not None and order.requested_date < settings.today:
        message = f"The requested date {order.requested_date.isoformat()} is in the past."
        return [_finding("reject", message, "requested_date")]
    return _passed("The requested date is not in the past.", "requested_date")


def check_lead_time(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The requested date is not sooner than each product's lead time in working days from today."""
    if order.requested_date is None:
        return _passed("No requested date to check against lead times.", "requested_date")
    found = []
    for i, line in enumerate(order.lines):
        rule = _rule(session, line.product_id)
        if rule is None or rule.lead_time_days <= 0:
            continue
        earliest = add_working_days(session, settings.today, rule.lead_time_days, order.company_id)
        if order.requested_date < earliest:
            sku = line.product.sku if line.product else line.product_id
            message = (
                f"Line {i + 1}: {sku} needs {rule.lead_time_days} working days; the earliest date is "
                f"{earliest.isoformat()}, {order.requested_date.isoformat()} was requested."
            )
            found.append(_finding("warn", message, "requested_date"))
    return _or_pass(found, "The requested date allows every lead time.", "requested_date")


def _line_key(order: Order) -> Counter[tuple[int, Decimal]]:
    return Counter((line.product_id, Decimal(line.quantity).normalize()) for line in order.lines)


def check_duplicate(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """No other open order of the customer has the same lines within the window (days of entry)."""
    window = int(settings.get(DUPLICATE_WINDOW, 7))
    if not order.lines:
        return _passed("No lines to compare with other orders.", "lines")
    day = order_day(order)
    query = select(Order).where(
        Order.customer_id == order.customer_id,
        Order.status.not_in(CLOSED),
        Order.created_at >= day_start(day - dt.timedelta(days=window)),
    )
    if order.id is not None:
        query = query.where(Order.id != order.id)
    mine = _line_key(order)
    found = []
    for other in session.scalars(query.order_by(Order.id)):
        if abs((order_day(other) - day).days) <= window and _line_key(other) == mine:
            message = f"Order {other.number} of the same customer has the same lines (entered {order_day(other)})."
            found.append(_finding("warn", message, "lines"))
    return _or_pass(found, "No duplicate order found.", "lines")


BUILTIN_RULES: tuple[PrecheckRule, ...] = (
    PrecheckRule("required", N_("Key information present"), check_required),
    PrecheckRule("customer", N_("Customer active and not blocked"), check_customer),
    PrecheckRule("product", N_("Products active"), check_product),
    PrecheckRule("price", N_("Unit price equals the applicable price"), check_price),
    PrecheckRule("quantity", N_("Quantity within the product's limits"), check_quantity),
    PrecheckRule("payment", N_("Payment method allowed for the customer"), check_payment),
    PrecheckRule("requested_date", N_("Requested date not in the past"), check_requested_date),
    PrecheckRule("lead_time", N_("Requested date allows the lead time"), check_lead_time),
    PrecheckRule("duplicate", N_("No duplicate order"), check_duplicate),
)

SETTINGS: tuple[Setting, ...] = (
    Setting(
        TOLERANCE,
        float,
        0.0,
        N_("Pre-check: price tolerance (%)"),
        N_("A unit price differing from the applicable price by more than this percentage is a warning."),
        minimum=0,
        maximum=100,
    ),
    Setting(
        DUPLICATE_WINDOW,
        int,
        7,
        N_("Pre-check: duplicate window (days)"),
        N_("Another order of the customer with the same lines entered this many days apart is a duplicate."),
        minimum=0,
    ),
    *(
        Setting(RULE_SETTING.format(rule.code), bool, True, rule.label, N_("Run this pre-check rule."))
        for rule in BUILTIN_RULES
    ),
)


def precheck_rules(registry: Registry) -> list[PrecheckRule]:
    """Intake's built-in rules, then those other plugins add through the hook."""
    rules = list(BUILTIN_RULES)
    hook = getattr(registry.hook, "ordo_intake_precheck_rules", None)
    if hook is not None:
        for contributed in hook():
            rules.extend(contributed or ())
    return rules


def run_rules(
    session: Session, order: Order, registry: Registry | None = None, today: dt.date | None = None
) -> list[tuple[str, Finding]]:
    """Run every enabled rule on ``order``; each finding with the code of the rule that gave it.

    ``registry`` defaults to the one that opened ``session``; ``today`` to the company's
    date now.
    """
    registry = registry or session_registry(session)
    settings = PrecheckSettings(session, registry, today or company_now().date())
    found: list[tuple[str, Finding]] = []
    for rule in precheck_rules(registry):
        if settings.enabled(rule.code):
            found.extend((rule.code, finding) for finding in rule.check(session, order, settings))
    return found


def run_precheck(
    session: Session, order: Order, registry: Registry | None = None, today: dt.date | None = None
) -> list[Finding]:
    """Every enabled rule's findings on ``order``, rule by rule (see :func:`run_rules`)."""
    return [finding for _, finding in run_rules(session, order, registry, today)]


def worst(findings: Iterable[Finding]) -> str:
    """The most serious level among ``findings``: reject, warn or pass."""
    levels = {f.level for f in findings}
    return "reject" if "reject" in levels else "warn" if "warn" in levels else "pass"
