"""Intake's pre-check rules (IN-3): each rule passes, warns or rejects; rules are switched off
by settings; other plugins add rules through ``ordo_intake_precheck_rules``; findings carry
a msgid and params so they read in each user's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contract import fake_plugin
from core.contrib import Finding
from core.models import Order, Product, User
from core.plugins import Registry, discover
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import make_order
from plugins.intake import precheck
from plugins.intake.models import IntakeCustomerProfile, IntakeFinding, IntakeProductRule, IntakePurchaseLimit

pytestmark = pytest.mark.req("IN-3")

#: A Tuesday; the default order asks for 2026-12-15, ten working days later.
TODAY = dt.date(2026, 12, 1)
GOOD_LINES = [{"product": "P-100", "quantity": "2", "unit_price": "1200.00"}]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


@pytest.fixture
def registry(app: Any) -> Registry:
    return app.extensions["ordo"].registry


@pytest.fixture
def order(session: Session, admin: User, seed: dict[str, Any]) -> Order:
    return make_order(session, admin, lines=GOOD_LINES)


def run(session: Session, order: Order, registry: Registry, code: str | None = None) -> list[Finding]:
    """The findings of rule ``code`` (all rules when None)."""
    if code is None:
        return precheck.run_precheck(session, order, registry, today=TODAY)
    rule = next(r for r in precheck.BUILTIN_RULES if r.code == code)
    return rule.check(session, order, precheck.PrecheckSettings(session, registry, TODAY))


def levels(findings: list[Finding]) -> list[str]:
    return [f.level for f in findings]


def test_a_good_order_passes_every_rule(session, order, registry):
    findings = run(session, order, registry)
    assert levels(findings) == ["pass"] * len(precheck.BUILTIN_RULES)
    assert all(f.plugin == "intake" for f in findings)


def test_missing_key_information_is_rejected_field_by_field(session, order, registry):
    order.ship_to_contact = order.contact_name = ""
    order.ship_to_address = ""
    order.requested_date = None
    order.payment_method = ""
    order.lines[0].quantity = Decimal("0")
    findings = run(session, order, registry, "required")
    assert levels(findings) == ["reject"] * 5
    assert [f.field for f in findings] == [
        "contact_name",
        "ship_to_address",
        "lines[0].quantity",
        "requested_date",
        "payment_method",
    ]


def test_an_order_without_lines_is_rejected(session, order, registry):
    order.lines.clear()
    assert [(f.level, f.field) for f in run(session, order, registry, "required")] == [("reject", "lines")]


def test_an_inactive_or_blocked_customer_is_rejected_with_the_reason(session, order, registry):
    order.customer.active = False
    assert [(f.level, f.field) for f in run(session, order, registry, "customer")] == [("reject", "customer")]
    order.customer.active = True
    session.add(IntakeCustomerProfile(customer_id=order.customer_id, blocked=True, blocked_reason="overdue invoices"))
    session.flush()
    (finding,) = run(session, order, registry, "customer")
    assert finding.level == "reject" and "overdue invoices" in finding.message


def test_an_inactive_product_is_rejected(session, order, registry):
    assert levels(run(session, order, registry, "product")) == ["pass"]
    order.lines[0].product.active = False
    (finding,) = run(session, order, registry, "product")
    assert (finding.level, finding.field) == ("reject", "lines[0].product")
    assert "P-100" in finding.message


def test_a_price_off_the_applicable_price_warns_showing_both_prices(session, order, registry):
    order.lines[0].unit_price = Decimal("1150")
    (finding,) = run(session, order, registry, "price")
    assert (finding.level, finding.field) == ("warn", "lines[0].unit_price")
    assert "1150" in finding.message and "1200" in finding.message


def test_the_price_tolerance_setting_allows_a_small_difference(session, order, registry):
    order.lines[0].unit_price = Decimal("1150")  # 4.2 % below the list price
    set_setting(session, precheck.TOLERANCE, 5.0, registry=registry)
    assert levels(run(session, order, registry, "price")) == ["pass"]
    set_setting(session, precheck.TOLERANCE, 4.0, registry=registry)
    assert levels(run(session, order, registry, "price")) == ["warn"]


def test_a_quantity_outside_the_products_limits_is_rejected(session, order, registry):
    product_id = order.lines[0].product_id
    session.add(IntakeProductRule(product_id=product_id, min_quantity=Decimal("1"), max_quantity=Decimal("5")))
    session.flush()
    assert levels(run(session, order, registry, "quantity")) == ["pass"]
    order.lines[0].quantity = Decimal("6")
    (finding,) = run(session, order, registry, "quantity")
    assert (finding.level, finding.field) == ("reject", "lines[0].quantity") and "maximum 5" in finding.message
    session.get(IntakeProductRule, product_id).min_quantity = Decimal("10")
    order.lines[0].quantity = Decimal("3")
    assert "minimum 10" in run(session, order, registry, "quantity")[0].message


def test_a_payment_method_the_customer_may_not_use_is_rejected(session, order, registry):
    profile = IntakeCustomerProfile(customer_id=order.customer_id, payment_methods="monthly_settlement, prepaid")
    session.add(profile)
    session.flush()
    assert levels(run(session, order, registry, "payment")) == ["pass"]
    profile.payment_methods = "prepaid"
    (finding,) = run(session, order, registry, "payment")
    assert (finding.level, finding.field) == ("reject", "payment_method")


def test_a_requested_date_in_the_past_is_rejected(session, order, registry):
    order.requested_date = TODAY
    assert levels(run(session, order, registry, "requested_date")) == ["pass"]
    order.requested_date = TODAY - dt.timedelta(days=1)
    (finding,) = run(session, order, registry, "requested_date")
    assert (finding.level, finding.field) == ("reject", "requested_date")


def test_a_requested_date_sooner_than_the_lead_time_in_working_days_warns(session, order, registry):
    rule = IntakeProductRule(product_id=order.lines[0].product_id, lead_time_days=10)
    session.add(rule)
    session.flush()
    assert levels(run(session, order, registry, "lead_time")) == ["pass"]  # 2026-12-15 is the 10th working day
    rule.lead_time_days = 11
    (finding,) = run(session, order, registry, "lead_time")
    assert (finding.level, finding.field) == ("warn", "requested_date") and "2026-12-16" in finding.message


def test_the_same_lines_of_the_same_customer_within_the_window_warn_naming_the_other_order(
    session, admin, order, registry
):
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]
    other = make_order(session, admin, lines=GOOD_LINES, reference="PO-2026-002")
    (finding,) = run(session, order, registry, "duplicate")
    assert (finding.level, finding.field) == ("warn", "lines") and other.number in finding.message
    other.status = "cancelled"
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]


def test_different_lines_or_another_customer_are_no_duplicate(session, admin, order, registry):
    make_order(session, admin, lines=[{"product": "P-100", "quantity": "3", "unit_price": "1200.00"}])
    make_order(session, admin, customer="C002", lines=GOOD_LINES)
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]


def test_only_an_order_with_exactly_the_same_lines_is_a_duplicate(session, admin, order, registry):
    """Lines compared as a whole: more lines, or the same product twice, is another order."""
    extra = {"product": "P-200", "quantity": "1"}
    make_order(session, admin, lines=[*GOOD_LINES, extra])
    make_order(session, admin, lines=GOOD_LINES * 2)
    make_order(session, admin, lines=[{"product": "P-100", "quantity": "2.000"}, extra])
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]
    same = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2.000", "unit_price": "1100.00"}])
    (finding,) = run(session, order, registry, "duplicate")
    assert finding.level == "warn" and same.number in finding.message


def test_a_duplicate_outside_the_window_is_not_reported(session, admin, order, registry):
    other = make_order(session, admin, lines=GOOD_LINES)
    other.created_at = order.created_at - dt.timedelta(days=3)
    set_setting(session, precheck.DUPLICATE_WINDOW, 2, registry=registry)
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]
    set_setting(session, precheck.DUPLICATE_WINDOW, 3, registry=registry)
    assert levels(run(session, order, registry, "duplicate")) == ["warn"]


def test_a_disabled_rule_is_skipped(session, order, registry):
    order.payment_method = ""
    assert "reject" in levels(run(session, order, registry))
    set_setting(session, "intake.precheck.rule.required", False, registry=registry)
    findings = run(session, order, registry)
    assert "reject" not in levels(findings)
    assert len(findings) == len(precheck.BUILTIN_RULES) - 1


def test_every_builtin_rule_has_a_setting_on_by_default(registry):
    for rule in precheck.BUILTIN_RULES:
        setting = registry.settings[f"intake.precheck.rule.{rule.code}"]
        assert setting.type is bool and setting.default is True


def test_another_plugin_adds_a_rule_through_the_hook(session, order):
    def credit(session: Session, order: Order, settings: precheck.PrecheckSettings) -> list[Finding]:
        return [Finding("reject", f"Credit limit exceeded by {order.number}.", "total", "credit")]

    rules = [precheck.PrecheckRule("credit", "Credit limit", credit, plugin="credit")]
    fake = fake_plugin("credit", ordo_intake_precheck_rules=lambda: rules)
    registry = Registry(["intake", "credit"], {**discover(), "credit": fake})
    findings = precheck.run_precheck(session, order, registry, today=TODAY)
    assert findings[-1] == Finding("reject", f"Credit limit exceeded by {order.number}.", "total", "credit")
    assert len(findings) == len(precheck.BUILTIN_RULES) + 1


def test_the_order_validate_hook_returns_the_precheck_findings(session, order, registry):
    results = registry.hook.ordo_order_validate(order=order, session=session)
    ours = next(r for r in results if r and r[0].plugin == "intake")
    assert {f.field for f in ours} >= {"requested_date", "payment_method", "customer"}


# --- purchase limits (IN-3 sales policy) ------------------------------------------------------

UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 2) -> dt.datetime:
    """An instant on a company day (02:00 UTC is 10:00 in Shanghai)."""
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def limit(session: Session, order: Order, period: str, maximum: str, sku: str = "P-100") -> IntakePurchaseLimit:
    product_id = session.scalar(select(Product.id).where(Product.sku == sku))
    row = IntakePurchaseLimit(
        customer_id=order.customer_id, product_id=product_id, period=period, max_quantity=Decimal(maximum)
    )
    session.add(row)
    session.flush()
    return row


def earlier(session: Session, admin: User, when: dt.datetime, quantity: str, status: str = "submitted", **kw: Any):
    """Another order of the customer for P-100, entered at ``when``, in ``status``."""
    other = make_order(session, admin, lines=[{"product": "P-100", "quantity": quantity, "unit_price": "1200"}], **kw)
    other.created_at = when
    other.status = status
    session.flush()
    return other


def test_no_purchase_limit_passes(session, order, registry):
    assert levels(run(session, order, registry, "purchase_limit")) == ["pass"]


def test_an_order_over_the_monthly_limit_is_rejected_naming_product_period_limit_and_quantities(
    session, admin, order, registry
):
    order.created_at = at(2026, 12, 10)
    limit(session, order, "month", "5")
    earlier(session, admin, at(2026, 12, 1), "3")
    (finding,) = run(session, order, registry, "purchase_limit")  # 3 + 2 = 5: within
    assert finding.level == "pass"
    earlier(session, admin, at(2026, 12, 2), "1")  # 4 + 2 = 6 > 5
    (finding,) = run(session, order, registry, "purchase_limit")
    assert (finding.level, finding.field) == ("reject", "lines[0].quantity")
    assert finding.message == (
        "Purchase limit for P-100 exceeded: at most 5 per month; 4 already ordered in 2026-12, this order adds 2."
    )
    assert finding.params == {"sku": "P-100", "limit": "5", "ordered": "4", "window": "2026-12", "quantity": "2"}


def test_drafts_cancelled_rejected_and_other_customers_orders_do_not_count(session, admin, order, registry):
    order.created_at = at(2026, 12, 10)
    limit(session, order, "month", "2")
    for status in ("draft", "cancelled", "rejected"):
        earlier(session, admin, at(2026, 12, 3), "5", status)
    earlier(session, admin, at(2026, 12, 3), "5", customer="C002")
    assert levels(run(session, order, registry, "purchase_limit")) == ["pass"]
    order.lines[0].quantity = Decimal("3")  # this order alone goes over
    assert levels(run(session, order, registry, "purchase_limit")) == ["reject"]


def test_an_order_in_the_previous_month_does_not_count_for_a_monthly_limit(session, admin, order, registry):
    order.created_at = at(2026, 12, 1)
    limit(session, order, "month", "5")
    earlier(session, admin, at(2026, 11, 30), "4")
    assert levels(run(session, order, registry, "purchase_limit")) == ["pass"]


def test_the_order_day_is_the_company_day_not_the_utc_day(session, admin, order, registry):
    order.created_at = at(2026, 12, 1)
    limit(session, order, "month", "5")
    earlier(session, admin, dt.datetime(2026, 11, 30, 17, 0, tzinfo=UTC), "4")  # 1 December 01:00 in Shanghai
    assert levels(run(session, order, registry, "purchase_limit")) == ["reject"]


def test_quarter_limits_count_the_calendar_quarter(session, admin, order, registry):
    order.created_at = at(2026, 10, 5)
    limit(session, order, "quarter", "10")
    earlier(session, admin, at(2026, 9, 30), "9")  # Q3: not counted
    assert levels(run(session, order, registry, "purchase_limit")) == ["pass"]
    earlier(session, admin, at(2026, 12, 31), "9")  # Q4 like this order (later in the quarter counts too)
    (finding,) = run(session, order, registry, "purchase_limit")
    assert finding.level == "reject" and "per quarter" in finding.message and "2026-Q4" in finding.message


def test_year_limits_count_the_calendar_year(session, admin, order, registry):
    order.created_at = at(2026, 1, 2)
    limit(session, order, "year", "10")
    earlier(session, admin, at(2025, 12, 31), "9")  # last year
    assert levels(run(session, order, registry, "purchase_limit")) == ["pass"]
    earlier(session, admin, at(2026, 6, 30), "9")
    (finding,) = run(session, order, registry, "purchase_limit")
    assert finding.level == "reject" and "at most 10 per year; 9 already ordered in 2026" in finding.message


def test_several_lines_of_one_product_add_up(session, admin, registry, seed):
    lines = [{"product": "P-100", "quantity": q, "unit_price": "1200"} for q in ("2", "2")]
    order = make_order(session, admin, lines=lines)
    limit(session, order, "month", "3")
    (finding,) = run(session, order, registry, "purchase_limit")
    assert finding.level == "reject" and finding.params["quantity"] == "4"


@pytest.mark.req("IN-4")
def test_a_submitted_order_over_a_limit_is_rejected_automatically_with_the_reason_kept(session, admin, registry, seed):
    order = make_order(session, admin, lines=GOOD_LINES, requested_date="2030-01-15")
    limit(session, order, "month", "1")
    take_action(session, registry, admin, order, "submit")
    session.flush()
    assert order.status == "rejected"
    row = session.scalar(select(IntakeFinding).where(IntakeFinding.rule == "purchase_limit"))
    assert row is not None and row.level == "reject"
    assert row.msgid == precheck.LIMIT_EXCEEDED["month"] and row.params["limit"] == "1"


# --- duplicates by external reference ------------------------------------------------------------


def test_the_same_external_reference_from_another_channel_warns_naming_the_other_order(session, admin, registry, seed):
    order = make_order(session, admin, lines=GOOD_LINES, external_reference="EDI-0815")
    other = make_order(
        session,
        admin,
        channel="email",
        external_reference="EDI-0815",
        lines=[{"product": "P-300", "quantity": "7", "unit_price": "12.50"}],
    )
    (finding,) = run(session, order, registry, "duplicate")
    assert (finding.level, finding.field) == ("warn", "external_reference")
    assert other.number in finding.message and "EDI-0815" in finding.message
    other.status = "cancelled"
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]


def test_another_customers_external_reference_or_none_is_no_duplicate(session, admin, registry, seed):
    order = make_order(session, admin, lines=GOOD_LINES, external_reference="EDI-1")
    make_order(session, admin, customer="C002", external_reference="EDI-1")
    make_order(session, admin, lines=[{"product": "P-300", "quantity": "7", "unit_price": "12.50"}])
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]
    order.external_reference = None
    assert levels(run(session, order, registry, "duplicate")) == ["pass"]


# --- translatable findings --------------------------------------------------------------------


def test_builtin_findings_carry_their_msgid_and_params(session, order, registry):
    order.customer.active = False
    order.payment_method = ""
    findings = run(session, order, registry)
    assert findings and all(isinstance(f, precheck.Reason) and f.msgid for f in findings)
    for f in findings:
        assert f.message == (f.msgid % dict(f.params) if f.params else f.msgid)
    inactive = next(f for f in findings if f.field == "customer")
    assert inactive.msgid == "Customer %(code)s is inactive." and inactive.params == {"code": "C001"}
    assert inactive.message == "Customer C001 is inactive."


def test_finding_text_is_chinese_in_a_chinese_request_and_english_otherwise(app):
    params = {"code": "C001"}
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}):
        assert precheck.finding_text("Customer %(code)s is inactive.", params, "x") == "客户 C001 已停用。"
        text = precheck.finding_text(precheck.LIMIT_EXCEEDED["quarter"], {**LIMIT_PARAMS}, "x")
        assert text.startswith("P-100 超出限购") and "2026-Q4" in text
        assert precheck.finding_text("", {}, "As the rule wrote it.") == "As the rule wrote it."
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert precheck.finding_text("Customer %(code)s is inactive.", params, "x") == "Customer C001 is inactive."


LIMIT_PARAMS = {"sku": "P-100", "limit": "10", "ordered": "8", "window": "2026-Q4", "quantity": "3"}


def test_a_reason_from_another_plugin_is_translated_by_its_msgid():
    reason = precheck.Reason.build("warn", "Customer %(code)s is inactive.", "customer", "credit", code="C9")
    assert (reason.level, reason.message, reason.field, reason.plugin) == (
        "warn",
        "Customer C9 is inactive.",
        "customer",
        "credit",
    )
    assert hash(reason) == hash(precheck.Reason.build("warn", reason.msgid, "customer", "credit", code="C9"))
