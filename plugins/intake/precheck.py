"""The automatic pre-check of an order (DOMAIN.md IN-3, IN-4): rules giving pass / warn / reject.

A rule is a :class:`PrecheckRule`: a code and a function ``(session, order, settings)``
returning :class:`core.contrib.Finding` objects, each naming the field it is about
(``payment_method``, ``lines[0].unit_price``…). Intake's built-in rules are in
:data:`BUILTIN_RULES`; other plugins add theirs through the hook
``ordo_intake_precheck_rules`` (:mod:`plugins.intake.hookspecs`). Each rule is switched
off by the bool setting ``intake.precheck.rule.<code>``. :func:`run_precheck` runs them.

Intake's findings are :class:`Reason` objects: besides the English ``message`` they keep
a gettext ``msgid`` and its ``params``, so the queue, the order panel and the notice to
a rejected order's customer show them in each reader's language (:func:`finding_text`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from flask import has_app_context
from flask_babel import gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.calendar import add_working_days
from core.clock import company_now, day_start
from core.contrib import Finding, Setting
from core.labels import N_
from core.models import Order, OrderLine
from core.settings import get_setting as _get_setting
from core.settings import session_registry
from plugins.intake.limits import ordered_in_period, period_name, plain_quantity, purchase_limits_for
from plugins.intake.models import IntakeCustomerProfile, IntakeProductRule
from plugins.intake.pricing import AppliedPrice, PriceBook, customer_price_book, entry_day, order_day

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
    """What a rule may read besides the order: settings (by key), today's company date, and
    the master data the built-in rules share, read once per pre-check run.

    One object serves one run of the rules on one order (:func:`run_rules`). Customer
    profiles, product rules, price books and lead-time dates are read on first use and
    kept, so rules looking at every line do not query once per line and rule.
    """

    session: Session
    registry: Registry
    today: dt.date
    _profiles: dict[int, IntakeCustomerProfile | None] = field(default_factory=dict, init=False, repr=False)
    _product_rules: dict[int, IntakeProductRule | None] = field(default_factory=dict, init=False, repr=False)
    _price_books: dict[tuple[int | None, dt.date, str], PriceBook] = field(default_factory=dict, init=False, repr=False)
    _earliest: dict[tuple[int, int | None], dt.date] = field(default_factory=dict, init=False, repr=False)

    def customer_profile(self, customer_id: int | None) -> IntakeCustomerProfile | None:
        """The customer's intake profile (``None``: none, or no customer), read once per run."""
        if customer_id is None:
            return None
        if customer_id not in self._profiles:
            self._profiles[customer_id] = self.session.get(IntakeCustomerProfile, customer_id)
        return self._profiles[customer_id]

    def product_rules(self, product_ids: Iterable[int | None]) -> dict[int, IntakeProductRule | None]:
        """The intake rule of each product (``None``: it has none); those not read yet in one query."""
        wanted = {product_id for product_id in product_ids if product_id is not None}
        missing = wanted - self._product_rules.keys()
        if missing:
            found = {
                rule.product_id: rule
                for rule in self.session.scalars(
                    select(IntakeProductRule).where(IntakeProductRule.product_id.in_(missing))
                )
            }
            self._product_rules.update({product_id: found.get(product_id) for product_id in missing})
        return {product_id: self._product_rules[product_id] for product_id in wanted}

    def line_rules(self, order: Order) -> dict[int, IntakeProductRule | None]:
        """The intake rule of each of ``order``'s products (see :meth:`product_rules`)."""
        return self.product_rules(line.product_id for line in order.lines)

    def price_for_line(self, order: Order, line: OrderLine) -> AppliedPrice | None:
        """Like :func:`plugins.intake.pricing.price_for_line`, from one price book per run."""
        day = order_day(order)
        key = (order.customer_id, day, order.currency)
        book = self._price_books.get(key)
        if book is None:
            profile = self.customer_profile(order.customer_id)
            book = customer_price_book(
                self.session,
                order.customer_id,
                profile.group_id if profile is not None else None,
                day,
                order.currency,
                [other.product_id for other in order.lines if other.product_id is not None],
            )
            self._price_books[key] = book
        return book.price(line.product_id, line.quantity)

    def earliest_date(self, lead_time_days: int, company_id: int | None) -> dt.date:
        """The ``lead_time_days``-th working day after today in the company's calendar, counted once."""
        key = (lead_time_days, company_id)
        if key not in self._earliest:
            self._earliest[key] = add_working_days(self.session, self.today, lead_time_days, company_id)
        return self._earliest[key]

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


@dataclass(frozen=True)
class Reason(Finding):
    """A finding whose message can be shown in any language: a gettext ``msgid`` and its ``params``.

    ``message`` is the English text (``msgid % params``), what the API and logs show;
    screens and customer notices translate ``msgid`` and fill in ``params`` instead
    (:func:`finding_text`). Build one with :meth:`Reason.build`.
    """

    msgid: str = ""
    params: Mapping[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.level, self.message, self.field, self.plugin, self.msgid, tuple(sorted(self.params.items()))))

    @classmethod
    def build(
        cls, level: str, msgid: str, field_name: str | None = None, plugin: str = PLUGIN, **params: object
    ) -> Reason:
        """A finding at ``level`` worded by ``msgid`` (marked with ``N_``) with ``%(name)s`` ``params``."""
        texts = {key: str(value) for key, value in params.items()}
        return cls(level, msgid % texts if texts else msgid, field_name, plugin, msgid, texts)


def finding_text(msgid: str, params: Mapping[str, Any] | None, message: str) -> str:
    """A finding's text in the current request's language.

    With a ``msgid`` (a :class:`Reason`, or an IntakeFinding row's ``msgid``/``params``)
    the catalogue's translation is filled with ``params``; without one, or when the
    translation does not fit the params, ``message`` as the rule wrote it.
    """
    if not msgid:
        return message
    if not has_app_context():
        return message
    translated = gettext(msgid)
    if not params:
        return translated
    try:
        return translated % {key: str(value) for key, value in params.items()}
    except (KeyError, ValueError, TypeError):
        return message


def _finding(level: str, msgid: str, field_name: str | None = None, **params: object) -> Reason:
    return Reason.build(level, msgid, field_name, PLUGIN, **params)


def _passed(msgid: str, field_name: str | None = None, **params: object) -> list[Finding]:
    return [_finding("pass", msgid, field_name, **params)]


def _or_pass(findings: list[Finding], msgid: str, field_name: str | None = None) -> list[Finding]:
    return findings or _passed(msgid, field_name)


def _sku(line: OrderLine) -> str:
    return line.product.sku if line.product else str(line.product_id)


# --- the built-in rules ------------------------------------------------------------------


def check_required(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Key information is present: customer, contact, ship-to address, lines, quantities, date, payment."""
    found: list[Finding] = []
    if order.customer_id is None:
        found.append(_finding("reject", N_("The customer is missing."), "customer"))
    if not (order.contact_name or order.ship_to_contact).strip():
        found.append(_finding("reject", N_("The contact name is missing."), "contact_name"))
    if not (order.contact_phone or order.ship_to_phone).strip():
        found.append(_finding("reject", N_("The contact phone is missing."), "contact_phone"))
    if not order.ship_to_address.strip():
        found.append(_finding("reject", N_("The ship-to address is missing."), "ship_to_address"))
    if not order.lines:
        found.append(_finding("reject", N_("The order has no lines."), "lines"))
    for i, line in enumerate(order.lines):
        if line.quantity is None or line.quantity <= 0:
            msgid = N_("Line %(line)s: the quantity must be greater than 0.")
            found.append(_finding("reject", msgid, f"lines[{i}].quantity", line=i + 1))
    if order.requested_date is None:
        found.append(_finding("reject", N_("The requested date is missing."), "requested_date"))
    if not order.payment_method.strip():
        found.append(_finding("reject", N_("The payment method is missing."), "payment_method"))
    return _or_pass(found, N_("Key information is complete."))


def check_customer(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The customer is active and not blocked (a blocked customer's reason is shown)."""
    customer = order.customer
    if customer is None:
        return [_finding("reject", N_("The customer does not exist."), "customer")]
    if not customer.active:
        return [_finding("reject", N_("Customer %(code)s is inactive."), "customer", code=customer.code)]
    profile = settings.customer_profile(order.customer_id)
    if profile is not None and profile.blocked:
        reason = profile.blocked_reason.strip()
        if not reason:
            return [_finding("reject", N_("Customer %(code)s is blocked."), "customer", code=customer.code)]
        msgid = N_("Customer %(code)s is blocked: %(reason)s.")
        return [_finding("reject", msgid, "customer", code=customer.code, reason=reason)]
    return _passed(N_("Customer %(code)s is active."), "customer", code=customer.code)


def check_product(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Every line's product exists and is active."""
    found: list[Finding] = []
    for i, line in enumerate(order.lines):
        name = f"lines[{i}].product"
        if line.product is None:
            found.append(_finding("reject", N_("Line %(line)s: the product does not exist."), name, line=i + 1))
        elif not line.product.active:
            msgid = N_("Line %(line)s: product %(sku)s is inactive.")
            found.append(_finding("reject", msgid, name, line=i + 1, sku=line.product.sku))
    return _or_pass(found, N_("Every product is active."), "lines")


#: How a price off the applicable one is worded, per kind of applicable price.
PRICE_DIFFERS = {
    "contract": N_("Line %(line)s: unit price %(price)s differs from the contract price %(applicable)s %(currency)s."),
    "group": N_("Line %(line)s: unit price %(price)s differs from the group price %(applicable)s %(currency)s."),
    "list": N_("Line %(line)s: unit price %(price)s differs from the list price %(applicable)s %(currency)s."),
}


def check_price(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Each unit price equals the applicable price within the tolerance (else warn with both)."""
    tolerance = Decimal(str(settings.get(TOLERANCE, 0.0)))
    found: list[Finding] = []
    for i, line in enumerate(order.lines):
        if line.product is None:
            continue
        applied = settings.price_for_line(order, line)
        name = f"lines[{i}].unit_price"
        if applied is None:
            msgid = N_("Line %(line)s: no price applies to %(sku)s in %(currency)s.")
            found.append(_finding("warn", msgid, name, line=i + 1, sku=line.product.sku, currency=order.currency))
        elif abs(line.unit_price - applied.unit_price) > applied.unit_price * tolerance / 100:
            found.append(
                _finding(
                    "warn",
                    PRICE_DIFFERS[applied.kind],
                    name,
                    line=i + 1,
                    price=f"{line.unit_price:f}",
                    applicable=f"{applied.unit_price:f}",
                    currency=applied.currency,
                )
            )
    return _or_pass(found, N_("Every unit price is the applicable price."), "lines")


def check_quantity(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Each quantity lies within the product's minimum and maximum per order."""
    rules = settings.line_rules(order)
    found: list[Finding] = []
    for i, line in enumerate(order.lines):
        rule = rules.get(line.product_id)
        if rule is None or line.quantity is None:
            continue
        name, sku, quantity = f"lines[{i}].quantity", _sku(line), f"{line.quantity:f}"
        if rule.min_quantity is not None and line.quantity < rule.min_quantity:
            msgid = N_("Line %(line)s: %(quantity)s of %(sku)s is below the minimum %(minimum)s.")
            found.append(
                _finding(
                    "reject", msgid, name, line=i + 1, quantity=quantity, sku=sku, minimum=f"{rule.min_quantity:f}"
                )
            )
        if rule.max_quantity is not None and line.quantity > rule.max_quantity:
            msgid = N_("Line %(line)s: %(quantity)s of %(sku)s is above the maximum %(maximum)s.")
            found.append(
                _finding(
                    "reject", msgid, name, line=i + 1, quantity=quantity, sku=sku, maximum=f"{rule.max_quantity:f}"
                )
            )
    return _or_pass(found, N_("Every quantity is within its limits."), "lines")


def check_payment(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The payment method is one the customer's profile allows (any when it lists none)."""
    profile = settings.customer_profile(order.customer_id)
    allowed = [m.strip() for m in (profile.payment_methods if profile else "").split(",") if m.strip()]
    if allowed and order.payment_method not in allowed:
        msgid = N_("Payment method '%(method)s' is not allowed for this customer (%(allowed)s).")
        return [_finding("reject", msgid, "payment_method", method=order.payment_method, allowed=", ".join(allowed))]
    return _passed(N_("The payment method is allowed."), "payment_method")


def check_requested_date(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The requested date is not in the past (company time)."""
    if order.requested_date is not None and order.requested_date < settings.today:
        msgid = N_("The requested date %(date)s is in the past.")
        return [_finding("reject", msgid, "requested_date", date=order.requested_date.isoformat())]
    return _passed(N_("The requested date is not in the past."), "requested_date")


def check_lead_time(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """The requested date is not sooner than each product's lead time in working days from today."""
    if order.requested_date is None:
        return _passed(N_("No requested date to check against lead times."), "requested_date")
    rules = settings.line_rules(order)
    found: list[Finding] = []
    for i, line in enumerate(order.lines):
        rule = rules.get(line.product_id)
        if rule is None or rule.lead_time_days <= 0:
            continue
        earliest = settings.earliest_date(rule.lead_time_days, order.company_id)
        if order.requested_date < earliest:
            msgid = N_(
                "Line %(line)s: %(sku)s needs %(days)s working days; the earliest date is %(earliest)s, "
                "%(requested)s was requested."
            )
            found.append(
                _finding(
                    "warn",
                    msgid,
                    "requested_date",
                    line=i + 1,
                    sku=_sku(line),
                    days=rule.lead_time_days,
                    earliest=earliest.isoformat(),
                    requested=order.requested_date.isoformat(),
                )
            )
    return _or_pass(found, N_("The requested date allows every lead time."), "requested_date")


def _line_key(order: Order) -> Counter[tuple[int, Decimal]]:
    return Counter((line.product_id, Decimal(line.quantity).normalize()) for line in order.lines)


def _same_lines(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Warnings for other open orders of the customer with the same lines within the window."""
    window = int(settings.get(DUPLICATE_WINDOW, 7))
    if not order.lines:
        return []
    day = order_day(order)
    # The other orders' lines as plain rows, not objects: a busy customer has many orders
    # in the window, and only their products and quantities are compared.
    query = (
        select(Order.id, Order.number, Order.created_at, OrderLine.product_id, OrderLine.quantity)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(
            Order.customer_id == order.customer_id,
            Order.status.not_in(CLOSED),
            Order.created_at >= day_start(day - dt.timedelta(days=window)),
        )
    )
    if order.id is not None:
        query = query.where(Order.id != order.id)
    others: dict[int, tuple[str, dt.date, Counter[tuple[int, Decimal]]]] = {}
    for other_id, number, created_at, product_id, quantity in session.execute(query.order_by(Order.id)):
        if other_id not in others:
            others[other_id] = (number, entry_day(created_at), Counter())
        others[other_id][2][(product_id, Decimal(quantity).normalize())] += 1
    mine = _line_key(order)
    found: list[Finding] = []
    for number, other_day, lines in others.values():
        if abs((other_day - day).days) <= window and lines == mine:
            msgid = N_("Order %(number)s of the same customer has the same lines (entered %(day)s).")
            found.append(_finding("warn", msgid, "lines", number=number, day=other_day.isoformat()))
    return found


def _same_external_reference(session: Session, order: Order) -> list[Finding]:
    """Warnings for other open orders of the customer with the same external reference (any channel)."""
    reference = (order.external_reference or "").strip()
    if not reference or order.customer_id is None:
        return []
    query = select(Order).where(
        Order.customer_id == order.customer_id,
        Order.status.not_in(CLOSED),
        Order.external_reference == reference,
    )
    if order.id is not None:
        query = query.where(Order.id != order.id)
    msgid = N_("Order %(number)s of the same customer has the same external reference %(reference)s.")
    return [
        _finding("warn", msgid, "external_reference", number=other.number, reference=reference)
        for other in session.scalars(query.order_by(Order.id))
    ]


def check_duplicate(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """No other open order of the customer has the same lines within the window (days of entry)
    or the same external reference (from any channel)."""
    found = _same_lines(session, order, settings) + _same_external_reference(session, order)
    return _or_pass(found, N_("No duplicate order found."), "lines")


#: How an exceeded purchase limit is worded, per period.
LIMIT_EXCEEDED = {
    "month": N_(
        "Purchase limit for %(sku)s exceeded: at most %(limit)s per month; %(ordered)s already ordered in "
        "%(window)s, this order adds %(quantity)s."
    ),
    "quarter": N_(
        "Purchase limit for %(sku)s exceeded: at most %(limit)s per quarter; %(ordered)s already ordered in "
        "%(window)s, this order adds %(quantity)s."
    ),
    "year": N_(
        "Purchase limit for %(sku)s exceeded: at most %(limit)s per year; %(ordered)s already ordered in "
        "%(window)s, this order adds %(quantity)s."
    ),
}


def check_purchase_limit(session: Session, order: Order, settings: PrecheckSettings) -> list[Finding]:
    """Each product stays within the customer's purchase limits per calendar month, quarter or year.

    Counts the product's quantity on the customer's other orders (not draft, cancelled or
    rejected) entered in the same period as this order, plus this order's quantity.
    """
    if order.customer_id is None or not order.lines:
        return _passed(N_("Every purchase is within the customer's limits."), "lines")
    wanted: dict[int, Decimal] = {}
    first_line: dict[int, int] = {}
    for i, line in enumerate(order.lines):
        if line.product_id is None or line.quantity is None:
            continue
        wanted[line.product_id] = wanted.get(line.product_id, Decimal("0")) + line.quantity
        first_line.setdefault(line.product_id, i)
    day = order_day(order)
    found: list[Finding] = []
    for limit in purchase_limits_for(session, order.customer_id, list(wanted)):
        ordered = ordered_in_period(session, order.customer_id, limit.product_id, limit.period, day, order.id)
        quantity = wanted[limit.product_id]
        if ordered + quantity > limit.max_quantity:
            line = order.lines[first_line[limit.product_id]]
            found.append(
                _finding(
                    "reject",
                    LIMIT_EXCEEDED[limit.period],
                    f"lines[{first_line[limit.product_id]}].quantity",
                    sku=_sku(line),
                    limit=plain_quantity(limit.max_quantity),
                    ordered=plain_quantity(ordered),
                    window=period_name(day, limit.period),
                    quantity=plain_quantity(quantity),
                )
            )
    return _or_pass(found, N_("Every purchase is within the customer's limits."), "lines")


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
    PrecheckRule("purchase_limit", N_("Purchases within the customer's limits per period"), check_purchase_limit),
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


def precheck_settings(
    session: Session, registry: Registry | None = None, today: dt.date | None = None
) -> PrecheckSettings:
    """A new :class:`PrecheckSettings` for one run: ``registry`` defaults to the one that
    opened ``session``, ``today`` to the company's date now."""
    return PrecheckSettings(session, registry or session_registry(session), today or company_now().date())


def run_rules(
    session: Session,
    order: Order,
    registry: Registry | None = None,
    today: dt.date | None = None,
    settings: PrecheckSettings | None = None,
) -> list[tuple[str, Finding]]:
    """Run every enabled rule on ``order``; each finding with the code of the rule that gave it.

    ``registry`` defaults to the one that opened ``session``; ``today`` to the company's
    date now. A caller that reads the same master data afterwards passes its own
    ``settings`` (its ``registry`` and ``today`` then count) to share what the rules read.
    """
    settings = settings or precheck_settings(session, registry, today)
    found: list[tuple[str, Finding]] = []
    for rule in precheck_rules(settings.registry):
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
