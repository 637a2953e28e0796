"""Intake's rule screens (IN-3): pre-check rule switches and tuning, products' ordering rules,
customers' purchase limits. Each renders for a permitted user and is refused (403) to others;
bad input shows a specific message and writes nothing; good input is saved and audited."""

from __future__ import annotations

import html
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.contract import fake_plugin
from core.models import AuditLog, Customer, Product, SettingValue
from core.testing import PASSWORD, csrf_token, login, make_user
from plugins.intake import precheck
from plugins.intake.models import IntakeProductRule, IntakePurchaseLimit

pytestmark = pytest.mark.req("IN-3")

RULES = "/intake/rules/"
PRODUCTS = "/intake/rules/products"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["intake"]


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def client_for(app: Flask, session: Session, email: str, roles: list[str], language: str = "en") -> FlaskClient:
    make_user(session, email, roles, language=language)
    client = app.test_client()
    login(client, email, PASSWORD)
    return client


@pytest.fixture
def boss(app: Flask, session: Session, seed: dict[str, Any]) -> FlaskClient:
    """An administrator: settings.manage and intake.prices.manage."""
    return client_for(app, session, "boss@example.com", ["admin"])


@pytest.fixture
def manager(app: Flask, session: Session, seed: dict[str, Any]) -> FlaskClient:
    """A sales manager: intake.prices.manage, not settings.manage."""
    return client_for(app, session, "manager@example.com", ["sales_manager"])


@pytest.fixture
def clerk(app: Flask, session: Session, seed: dict[str, Any]) -> FlaskClient:
    """An order clerk: intake.prices.read only."""
    return client_for(app, session, "clerk@example.com", ["order_clerk"])


@pytest.fixture
def outsider(app: Flask, session: Session, seed: dict[str, Any]) -> FlaskClient:
    """A warehouse user: none of the intake permissions."""
    return client_for(app, session, "wh@example.com", ["warehouse"])


def post(client: FlaskClient, path: str, data: dict[str, Any], token_from: str | None = None) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, token_from or path), **data})


def fresh(session: Session) -> Session:
    session.commit()  # end the read snapshot: the app wrote through its own session
    session.expire_all()
    return session


def audits(session: Session, entity: str) -> list[AuditLog]:
    return list(fresh(session).scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)))


def product_id(session: Session, sku: str) -> int:
    return session.scalar(select(Product.id).where(Product.sku == sku))  # type: ignore[return-value]


def customer_id(session: Session, code: str) -> int:
    return session.scalar(select(Customer.id).where(Customer.code == code))  # type: ignore[return-value]


def stored(session: Session, key: str) -> Any:
    row = fresh(session).get(SettingValue, key)
    return None if row is None else row.value


# --- pre-check rules -----------------------------------------------------------------------------


def rules_form(**changes: Any) -> dict[str, Any]:
    """Every rule on, the defaults for tuning, then ``changes`` (None leaves a field out: off)."""
    form: dict[str, Any] = {precheck.RULE_SETTING.format(r.code): "1" for r in precheck.BUILTIN_RULES}
    form[precheck.TOLERANCE] = "0"
    form[precheck.DUPLICATE_WINDOW] = "7"
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_the_rules_screen_lists_every_rule_with_its_switch_and_the_tuning(boss):
    response = boss.get(RULES)
    page = text(response)
    assert response.status_code == 200
    for rule in precheck.BUILTIN_RULES:
        assert f'data-rule="{rule.code}" data-on="yes"' in page
        assert f'name="intake.precheck.rule.{rule.code}"' in page
    assert "Purchases within the customer's limits per period" in page
    assert "Pre-check: price tolerance (%)" in page and "Pre-check: duplicate window (days)" in page
    assert 'href="/intake/rules/"' in page  # the menu entry


def test_switching_rules_and_tuning_is_saved_together_and_audited(boss, session):
    form = rules_form(**{"intake.precheck.rule.price": None, precheck.TOLERANCE: "2.5", precheck.DUPLICATE_WINDOW: "3"})
    response = post(boss, RULES, form)
    assert response.status_code == 302
    assert stored(session, "intake.precheck.rule.price") is False
    assert stored(session, precheck.TOLERANCE) == 2.5
    assert stored(session, precheck.DUPLICATE_WINDOW) == 3
    keys = {entry.changes["key"] for entry in audits(session, "setting")}
    assert keys == {"intake.precheck.rule.price", precheck.TOLERANCE, precheck.DUPLICATE_WINDOW}
    page = text(boss.get(RULES))
    assert 'data-rule="price" data-on="no"' in page and 'value="2.5"' in page


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (precheck.TOLERANCE, "five", "Enter a number."),
        (precheck.TOLERANCE, "150", "At most 100."),
        (precheck.DUPLICATE_WINDOW, "2.5", "Enter a whole number."),
        (precheck.DUPLICATE_WINDOW, "-1", "At least 0."),
    ],
)
def test_bad_tuning_values_show_field_errors_and_nothing_is_saved(boss, session, key, value, message):
    form = rules_form(**{"intake.precheck.rule.duplicate": None, key: value})
    response = post(boss, RULES, form)
    page = text(response)
    assert response.status_code == 422
    assert message in page and 'aria-invalid="true"' in page
    assert f'value="{value}"' in page  # what was typed stays
    assert stored(session, "intake.precheck.rule.duplicate") is None  # the valid switch was not saved either
    assert stored(session, key) is None
    assert audits(session, "setting") == []


def test_rules_of_other_plugins_are_listed_with_their_plugin(app, boss):
    def check(session, order, settings):  # pragma: no cover - only listed here
        return []

    fake = fake_plugin(
        "credit", ordo_intake_precheck_rules=lambda: [precheck.PrecheckRule("credit", "Credit limit", check, "credit")]
    )
    registry = app.extensions["ordo"].registry
    registry.pm.register(fake.module, name="credit-test")
    try:
        page = text(boss.get(RULES))
    finally:
        registry.pm.unregister(name="credit-test")
    assert 'data-rule="credit" data-on="yes"' in page and "Credit limit" in page
    assert "Always on: its plugin offers no switch." in page


def test_the_rules_screen_needs_settings_manage(manager, outsider):
    assert manager.get(RULES).status_code == 403
    assert outsider.get(RULES).status_code == 403
    token = csrf_token(manager, "/intake/price-check")
    assert manager.post(RULES, data={"csrf_token": token, **rules_form()}).status_code == 403


# --- products' ordering rules --------------------------------------------------------------------


def test_the_ordering_rules_list_shows_each_products_rules(clerk, session):
    session.add(
        IntakeProductRule(
            product_id=product_id(session, "P-100"),
            min_quantity=Decimal("2"),
            max_quantity=Decimal("50.5"),
            lead_time_days=10,
            regular=True,
        )
    )
    session.commit()
    response = clerk.get(PRODUCTS)
    page = text(response)
    assert response.status_code == 200
    row = page.split('data-product="P-100"')[1].split("</tr>")[0]
    assert ">2<" in row and ">50.5<" in row and ">10<" in row
    assert 'data-product="P-200"' in page and 'data-product="P-300"' in page
    assert "/intake/rules/products/" not in page  # a clerk may not edit: no edit links
    assert 'data-customer="C001"' in page and "/intake/rules/customers/" in page


def test_editing_a_products_rules_saves_and_audits(manager, session):
    pid = product_id(session, "P-200")
    path = f"{PRODUCTS}/{pid}"
    assert manager.get(path).status_code == 200
    form = {"min_quantity": "1.5", "max_quantity": "20", "lead_time_days": "15", "regular": "1"}
    response = post(manager, path, form)
    assert response.status_code == 302
    rule = fresh(session).get(IntakeProductRule, pid)
    assert (rule.min_quantity, rule.max_quantity, rule.lead_time_days, rule.regular) == (
        Decimal("1.5"),
        Decimal("20"),
        15,
        True,
    )
    post(manager, path, {"min_quantity": "", "max_quantity": "20", "lead_time_days": "15"})
    rule = fresh(session).get(IntakeProductRule, pid)
    assert rule.min_quantity is None and rule.regular is False
    entries = audits(session, "intake_product_rule")
    assert [(e.entity_id, e.action) for e in entries] == [(pid, "create"), (pid, "change")]
    assert entries[1].changes["min_quantity"] == ["1.500", None] and entries[1].changes["regular"] == [True, False]


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"min_quantity": "two"}, "min_quantity", "Enter a number, 0 or more."),
        ({"min_quantity": "5", "max_quantity": "3"}, "min_quantity", "The minimum must not be above the maximum."),
        ({"max_quantity": "-1"}, "max_quantity", "Must not be negative."),
        ({"max_quantity": "1.2345"}, "max_quantity", "at most 3 decimal places"),
        ({"lead_time_days": "366"}, "lead_time_days", "Enter a whole number of working days from 0 to 365."),
        ({"lead_time_days": "1.5"}, "lead_time_days", "Enter a whole number of working days from 0 to 365."),
    ],
)
def test_bad_ordering_rules_show_the_reason_and_write_nothing(manager, session, form, field, message):
    pid = product_id(session, "P-100")
    response = post(manager, f"{PRODUCTS}/{pid}", {"lead_time_days": "0", **form})
    page = text(response)
    assert response.status_code == 422
    assert message in page
    assert f'id="f-{field}" name="{field}" value="{form[field]}"' in page
    assert fresh(session).get(IntakeProductRule, pid) is None
    assert audits(session, "intake_product_rule") == []


def test_ordering_rules_need_read_to_see_and_manage_to_change(clerk, outsider, session):
    pid = product_id(session, "P-100")
    assert outsider.get(PRODUCTS).status_code == 403
    assert clerk.get(f"{PRODUCTS}/{pid}").status_code == 403
    response = post(clerk, f"{PRODUCTS}/{pid}", {"lead_time_days": "3"}, token_from=PRODUCTS)
    assert response.status_code == 403
    assert fresh(session).get(IntakeProductRule, pid) is None


def test_an_unknown_product_is_not_found(manager):
    assert manager.get(f"{PRODUCTS}/9999").status_code == 404


# --- customers' purchase limits ----------------------------------------------------------------------


def limits_path(session: Session, code: str = "C001") -> str:
    return f"/intake/rules/customers/{customer_id(session, code)}/limits"


def limit_rows(session: Session) -> list[tuple[int, int, str, Decimal]]:
    rows = fresh(session).scalars(select(IntakePurchaseLimit).order_by(IntakePurchaseLimit.id))
    return [(r.customer_id, r.product_id, r.period, r.max_quantity) for r in rows]


def test_adding_and_deleting_purchase_limits_is_saved_and_audited(manager, session):
    path = limits_path(session)
    page = text(manager.get(path))
    assert "No purchase limits" in page and 'id="limit-form"' in page
    assert post(manager, path, {"product": "P-100", "period": "quarter", "max_quantity": "40"}).status_code == 302
    assert post(manager, path, {"product": "P-100", "period": "month", "max_quantity": "15.5"}).status_code == 302
    cid, pid = customer_id(session, "C001"), product_id(session, "P-100")
    assert limit_rows(session) == [(cid, pid, "quarter", Decimal("40")), (cid, pid, "month", Decimal("15.5"))]
    page = text(manager.get(path))
    assert 'data-limit="P-100-month"' in page and 'data-limit="P-100-quarter"' in page
    assert page.index("P-100-month") < page.index("P-100-quarter")
    assert "Delete the limit of P-100 per month?" in page  # the confirm dialog's question
    limit_id = fresh(session).scalar(select(IntakePurchaseLimit.id).where(IntakePurchaseLimit.period == "month"))
    assert post(manager, f"{path}/{limit_id}/delete", {}, token_from=path).status_code == 302
    assert limit_rows(session) == [(cid, pid, "quarter", Decimal("40"))]
    entries = audits(session, "intake_purchase_limit")
    assert [e.action for e in entries] == ["create", "create", "delete"]
    assert entries[0].changes == {"customer": "C001", "product": "P-100", "period": "quarter", "max_quantity": "40"}


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"product": "P-999", "period": "month", "max_quantity": "5"}, "product", "Unknown product P-999."),
        ({"product": "", "period": "month", "max_quantity": "5"}, "product", "Required."),
        ({"product": "P-100", "period": "week", "max_quantity": "5"}, "period", "Choose month, quarter or year."),
        ({"product": "P-100", "period": "month", "max_quantity": "many"}, "max_quantity", "Enter a number, 0 or more."),
        ({"product": "P-100", "period": "month", "max_quantity": ""}, "max_quantity", "Required."),
        (
            {"product": "P-300", "period": "year", "max_quantity": "5"},
            "product",
            "This customer already has a limit for this product and period.",
        ),
    ],
)
def test_bad_purchase_limits_show_the_reason_and_write_nothing(manager, session, form, field, message):
    cid = customer_id(session, "C001")
    session.add(
        IntakePurchaseLimit(customer_id=cid, product_id=product_id(session, "P-300"), period="year", max_quantity=100)
    )
    session.commit()
    response = post(manager, limits_path(session), form)
    page = text(response)
    assert response.status_code == 422
    assert message in page and 'aria-invalid="true"' in page
    assert len(limit_rows(session)) == 1
    assert audits(session, "intake_purchase_limit") == []


def test_a_limit_of_another_customer_cannot_be_deleted_through_this_one(manager, session):
    session.add(
        IntakePurchaseLimit(
            customer_id=customer_id(session, "C002"),
            product_id=product_id(session, "P-100"),
            period="month",
            max_quantity=1,
        )
    )
    session.commit()
    limit_id = session.scalar(select(IntakePurchaseLimit.id))
    path = limits_path(session, "C001")
    assert post(manager, f"{path}/{limit_id}/delete", {}, token_from=path).status_code == 404
    assert len(limit_rows(session)) == 1


def test_purchase_limits_need_read_to_see_and_manage_to_change(clerk, outsider, session):
    path = limits_path(session)
    page = text(clerk.get(path))
    assert "No purchase limits" in page and 'id="limit-form"' not in page
    assert outsider.get(path).status_code == 403
    assert post(clerk, path, {"product": "P-100", "period": "month", "max_quantity": "5"}).status_code == 403
    assert fresh(session).scalar(select(func.count(IntakePurchaseLimit.id))) == 0


def test_the_customer_group_screens_link_to_purchase_limits(manager, session):
    path = limits_path(session)
    assert path in text(manager.get("/intake/groups"))
    assert path in text(manager.get(f"/intake/customers/{customer_id(session, 'C001')}/profile"))


@pytest.mark.parametrize("path", [RULES, PRODUCTS])
def test_the_screens_read_in_chinese(app, session, seed, path):
    client = client_for(app, session, "zh@example.com", ["admin"], language="zh_CN")
    page = text(client.get(path))
    assert "预审规则" in page if path == RULES else "订货规则" in page
    assert "Pre-check rules" not in page and "Ordering rules" not in page
