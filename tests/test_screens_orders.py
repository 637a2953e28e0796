"""The order screens with core alone: enter, edit, act, follow the history, stay in scope."""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any

import pytest
from markupsafe import Markup
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core import hookimpl
from core.contrib import Finding, Panel
from core.models import Order, OrderLine, OrderTransition, StepSetting
from core.services.orders import update_order
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, csrf_token, login, make_order, make_user


def text(response: Any) -> str:
    """The page's HTML with entities decoded, for plain-text assertions."""
    return html.unescape(response.get_data(as_text=True))


def post(client: Any, path: str, data: dict[str, Any], follow: bool = True) -> Any:
    """POST a form with the session's CSRF token, as the browser would."""
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/login")}, follow_redirects=follow)


def cell(page: str, name: str) -> str:
    """The table cell or field block holding the input called ``name`` (its errors included)."""
    start = page.index(f'name="{name}"')
    end = min(i for i in (page.find("</td>", start), page.find("</div>\n</div>", start)) if i != -1)
    return page[page.rfind("<", 0, start) : end]


def shown_status(page: str) -> str:
    """The status badge in the order page's title."""
    return re.search(r'<h1.*?ordo-status[^"]*" data-status="(\w+)"', page, re.S).group(1)


def order_form(**overrides: str) -> dict[str, str]:
    """A complete order form: header, ship-to and two lines."""
    data = {
        "customer": "C001",
        "channel": "phone",
        "payment_method": "monthly_settlement",
        "currency": "CNY",
        "urgency": "normal",
        "reference": "PO-2026-777",
        "reason": "Workshop extension",
        "requested_date": "2026-12-15",
        "contact_name": "张伟",
        "contact_phone": "023-6000-0001",
        "ship_to_contact": "张伟",
        "ship_to_phone": "023-6000-0001",
        "ship_to_province": "重庆市",
        "ship_to_city": "重庆市",
        "ship_to_address": "渝北区金开大道 1 号",
        "note": "Deliver to gate 2",
        "lines-0-product": "P-100",
        "lines-0-quantity": "2",
        "lines-0-unit_price": "1150.00",
        "lines-0-discount": "",
        "lines-0-description": "",
        "lines-1-product": "P-300",
        "lines-1-quantity": "100",
        "lines-1-unit_price": "",
        "lines-1-discount": "10",
        "lines-1-description": "YJV 3×2.5",
    }
    data.update(overrides)
    return data


# The test's session must not keep a transaction open while the app handles a request:
# on SQLite every transaction holds the write lock. So each read ends with a commit
# (which, unlike a rollback, leaves loaded objects usable).


def order_count(session: Any) -> int:
    """How many orders exist."""
    count = session.scalar(select(func.count()).select_from(Order))
    session.commit()
    return int(count or 0)


def fresh_order(session: Any, order_id: int) -> Order:
    """The order as stored now, lines and history loaded."""
    session.commit()
    order = session.scalars(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.lines).selectinload(OrderLine.product), selectinload(Order.transitions))
        .execution_options(populate_existing=True)
    ).one()
    session.commit()
    return order


@pytest.fixture
def as_admin(client, admin, seed, session):
    session.commit()
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    return client


@pytest.mark.req("CORE-1")
@pytest.mark.req("CORE-2")
@pytest.mark.req("CORE-6")
def test_an_order_is_entered_submitted_confirmed_and_completed_through_the_screens(as_admin, session):
    client = as_admin
    response = post(client, "/orders/new", order_form(), follow=False)
    assert response.status_code == 302
    order_id = int(re.search(r"/orders/(\d+)$", response.headers["Location"]).group(1))

    order = fresh_order(session, order_id)
    assert (order.status, order.channel, order.reference, order.payment_method) == (
        "draft",
        "phone",
        "PO-2026-777",
        "monthly_settlement",
    )
    assert [(line.product.sku, line.quantity, line.unit_price, line.discount) for line in order.lines] == [
        ("P-100", Decimal("2"), Decimal("1150"), Decimal("0")),
        ("P-300", Decimal("100"), Decimal("12.5"), Decimal("10")),
    ]
    # 2 × 1150 + 100 × 12.50 × 90 % = 3425.00 untaxed, 13 % VAT, computed by the server.
    assert order.total == Decimal("3870.25")
    assert order.ship_to_address == "渝北区金开大道 1 号"

    page = text(client.get(f"/orders/{order_id}"))
    assert order.number in page
    assert shown_status(page) == "draft"
    assert "YJV 3×2.5" in page and "3,870.25" in page

    for action, status in (("submit", "submitted"), ("confirm", "confirmed"), ("complete", "completed")):
        page = text(post(client, f"/orders/{order_id}/act", {"action": action}))
        assert "it is now at step" in page
        assert shown_status(page) == status
    assert fresh_order(session, order_id).status == "completed"
    history = page[page.index('id="history"') :]
    assert [m for m in re.findall(r'fw-semibold">([^<]+)</span>', history)] == [
        "Created",
        "Submit",
        "Confirm",
        "Complete",
    ]
    assert "Draft → Submitted" in history and "Confirmed → Completed" in history
    assert "Administrator" in history
    # A completed order cannot be edited; it offers only re-opening (to whoever may).
    assert re.findall(r'name="action" value="([a-z_]+)"', page) == ["reopen"]
    assert f"/orders/{order_id}/edit" not in page


@pytest.mark.req("RV-9")
def test_cancelling_needs_a_reason_and_the_reason_is_kept_and_shown(as_admin, session, admin):
    order = make_order(session, admin)
    page = text(as_admin.get(f"/orders/{order.id}"))
    # Cancel asks for a reason in a dialog and warns before it runs.
    dialog = page[page.index('id="action-cancel"') :]
    assert 'name="reason"' in dialog and "required" in dialog
    assert "Cancel this order? This cannot be undone." in dialog

    refused = text(post(as_admin, f"/orders/{order.id}/act", {"action": "cancel", "reason": "  "}))
    assert "“Cancel” needs a reason" in refused
    assert fresh_order(session, order.id).status == "draft"

    page = text(
        post(as_admin, f"/orders/{order.id}/act", {"action": "cancel", "reason": "Customer withdrew: budget cut"})
    )
    assert shown_status(page) == "cancelled"
    assert "Customer withdrew: budget cut" in page[page.index('id="history"') :]
    cancelled = fresh_order(session, order.id)
    assert cancelled.status == "cancelled"
    assert cancelled.transitions[-1].reason == "Customer withdrew: budget cut"


@pytest.mark.req("CORE-2")
def test_invalid_transitions_are_refused_with_a_message_and_change_nothing(as_admin, session, admin):
    order = make_order(session, admin)
    page = text(post(as_admin, f"/orders/{order.id}/act", {"action": "complete"}))
    assert "“Complete” is not possible while the order is at step “Draft”." in page
    page = text(post(as_admin, f"/orders/{order.id}/act", {"action": "teleport"}))
    assert "There is no action “teleport”." in page
    assert fresh_order(session, order.id).status == "draft"
    assert session.scalar(select(func.count()).select_from(OrderTransition)) == 0
    session.commit()


def test_an_action_on_a_stale_page_is_refused(as_admin, session, admin):
    order = make_order(session, admin)
    page = text(post(as_admin, f"/orders/{order.id}/act", {"action": "submit", "version": str(order.version + 1)}))
    assert "Someone changed this order meanwhile" in page
    assert fresh_order(session, order.id).status == "draft"


def test_a_blocked_action_is_shown_disabled_with_every_reason(as_admin, session, admin, seed):
    order = make_order(session, admin)
    seed["products"][0].active = False
    seed["local"].active = False
    session.commit()
    page = text(as_admin.get(f"/orders/{order.id}"))
    blocked = page[page.index("ordo-blocked") :]
    assert "Submit is not possible now:" in blocked
    assert "Line 1: product P-100 is deactivated." in blocked
    assert "Customer C001 is deactivated." in blocked
    assert re.search(r'<button type="button" class="[^"]*" disabled[^>]*data-action="submit"', page)
    # The pre-check panel shows the same findings.
    checks = page[page.index("ordo-findings") :]
    assert 'data-level="reject"' in checks and "Line 1: product P-100 is deactivated." in checks
    refused = text(post(as_admin, f"/orders/{order.id}/act", {"action": "submit"}))
    assert "“Submit” was refused:" in refused and "Line 1: product P-100 is deactivated." in refused
    assert fresh_order(session, order.id).status == "draft"


class _CreditPlugin:
    """A stand-in department plugin: a panel, a guard and a pre-check warning."""

    @hookimpl
    def ordo_order_panels(self, order, user, session):
        return [
            Panel(
                "Credit", Markup("<p class='credit'>Limit for {}: <b>OK</b></p>").format(order.customer.code), order=5
            )
        ]

    @hookimpl
    def ordo_order_guard(self, order, action, transition, user, session):
        return ["credit hold: overdue invoices", "credit limit exceeded"] if action == "confirm" else []

    @hookimpl
    def ordo_order_validate(self, order, session):
        return [Finding("warn", "price differs from contract")]


def test_plugin_panels_guards_and_findings_appear_on_the_order_page(as_admin, session, state, admin):
    state.registry.pm.register(_CreditPlugin(), name="credit-test")
    order = make_order(session, admin)
    post(as_admin, f"/orders/{order.id}/act", {"action": "submit"})
    raw = as_admin.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "<p class='credit'>Limit for C001: <b>OK</b></p>" in raw  # Markup is trusted as HTML
    assert 'data-plugin="credit-test"' in raw  # each panel says which plugin it came from
    page = text(as_admin.get(f"/orders/{order.id}"))
    assert 'data-level="warn"' in page and "price differs from contract" in page
    blocked = page[page.index("ordo-blocked") :]
    assert "credit hold: overdue invoices" in blocked and "credit limit exceeded" in blocked
    refused = text(post(as_admin, f"/orders/{order.id}/act", {"action": "confirm"}))
    assert "credit hold: overdue invoices" in refused and "credit limit exceeded" in refused
    assert fresh_order(session, order.id).status == "submitted"


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"lines-0-product": "NOPE"}, "lines-0-product", "Unknown product NOPE."),
        ({"lines-1-quantity": "0"}, "lines-1-quantity", "Quantity must be greater than zero."),
        ({"lines-0-unit_price": "1,150.0x"}, "lines-0-unit_price", "Not a valid number."),
        ({"lines-1-discount": "120"}, "lines-1-discount", "Discount is a percentage from 0 to 100."),
        ({"customer": ""}, "customer", "This field is required."),
        ({"customer": "C999"}, "customer", "Unknown customer C999."),
        ({"channel": "pigeon"}, "channel", "Choose one of the offered values."),
        ({"requested_date": "2026-13-45"}, "requested_date", "Not a valid date."),
        ({"currency": "yuan"}, "currency", "Use a three-letter ISO currency code."),
        ({"ship_to_city": "城" * 65}, "ship_to_city", "At most 64 characters."),
    ],
)
def test_bad_input_is_shown_beside_its_field_and_nothing_is_saved(as_admin, session, overrides, field, message):
    response = post(as_admin, "/orders/new", order_form(**overrides))
    assert response.status_code == 422
    page = text(response)
    assert "Nothing was saved" in page
    block = cell(page, field)
    assert "is-invalid" in block and message in block
    # What was typed is kept, so nothing needs re-entering.
    assert 'value="PO-2026-777"' in page
    assert order_count(session) == 0


def test_an_order_needs_a_line(as_admin, session):
    data = {k: v for k, v in order_form().items() if not k.startswith("lines-")}
    page = text(post(as_admin, "/orders/new", data))
    assert "An order needs at least one line." in page
    assert order_count(session) == 0


@pytest.mark.req("CORE-5")
def test_a_draft_is_edited_with_its_version_and_a_stale_form_is_refused(as_admin, session, admin):
    order = make_order(session, admin)
    form = text(as_admin.get(f"/orders/{order.id}/edit"))
    assert f'name="version" type="hidden" value="{order.version}"' in form
    assert 'value="P-100"' in form and 'value="1150.00"' in form

    changed = post(
        as_admin,
        f"/orders/{order.id}/edit",
        order_form(
            version=str(order.version),
            **{
                "lines-0-quantity": "5",
                "lines-1-product": "",
                "lines-1-quantity": "",
                "lines-1-discount": "",
                "lines-1-description": "",
            },
        ),
    )
    assert f"Order {order.number} was saved." in text(changed)
    saved = fresh_order(session, order.id)
    assert [(line.product.sku, line.quantity) for line in saved.lines] == [("P-100", Decimal("5"))]
    assert saved.total == Decimal("6497.50")  # 5 × 1150 + 13 % VAT
    version_seen = saved.version

    # Someone else saves meanwhile; the form still carries the version it was opened at.
    other = fresh_order(session, order.id)
    update_order(session, admin, other, {"version": other.version, "reference": "CHANGED-ELSEWHERE"})
    session.commit()
    stale = post(
        as_admin, f"/orders/{order.id}/edit", order_form(version=str(version_seen), reference="MINE"), follow=False
    )
    assert stale.status_code == 409
    assert "Someone else saved this order after you opened it" in text(stale)
    assert fresh_order(session, order.id).reference == "CHANGED-ELSEWHERE"


@pytest.mark.req("CORE-5")
def test_only_drafts_can_be_edited(as_admin, session, admin):
    order = make_order(session, admin)
    post(as_admin, f"/orders/{order.id}/act", {"action": "submit"})
    page = text(as_admin.get(f"/orders/{order.id}/edit", follow_redirects=True))
    assert "only drafts can be edited" in page
    post(as_admin, f"/orders/{order.id}/edit", order_form(version="2", reference="SNEAKY"))
    assert fresh_order(session, order.id).reference == "PO-2026-001"


@pytest.mark.req("CORE-4")
def test_an_order_outside_the_users_scope_answers_404_everywhere(client, session, admin, seed):
    theirs = make_order(session, admin, reference="THEIRS")
    make_user(session, "wang@example.com", ["sales"], branch=seed["hq"])
    login(client, "wang@example.com", PASSWORD)
    mine = post(client, "/orders/new", order_form(reference="MINE"), follow=False)
    assert mine.status_code == 302

    for path in (f"/orders/{theirs.id}", f"/orders/{theirs.id}/edit", "/orders/999999"):
        assert client.get(path).status_code == 404, path
    assert post(client, f"/orders/{theirs.id}/act", {"action": "submit"}, follow=False).status_code == 404
    listing = text(client.get("/orders"))
    assert "MINE" in listing and "THEIRS" not in listing
    export = client.get("/orders/export.csv").get_data(as_text=True)
    assert "MINE" in export and "THEIRS" not in export
    assert fresh_order(session, theirs.id).status == "draft"


@pytest.mark.req("CORE-3")
def test_screens_need_a_login_and_the_permission(client, session, admin, seed):
    order = make_order(session, admin)
    response = client.get(f"/orders/{order.id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    make_user(session, "auditor@example.com", ["auditor"])
    login(client, "auditor@example.com", PASSWORD)
    assert client.get(f"/orders/{order.id}").status_code == 200
    forbidden = client.get("/orders/new")
    assert forbidden.status_code == 403 and "Not allowed" in text(forbidden)
    assert client.get(f"/orders/{order.id}/edit").status_code == 403
    page = text(client.get(f"/orders/{order.id}"))
    assert "New order" not in text(client.get("/orders"))
    assert f"/orders/{order.id}/edit" not in page
    # The auditor may not submit: the refusal comes from the workflow, nothing changes.
    refused = text(post(client, f"/orders/{order.id}/act", {"action": "submit"}))
    assert "You may not do “Submit”" in refused
    assert fresh_order(session, order.id).status == "draft"


def test_the_list_filters_searches_sorts_and_pages(as_admin, session, admin, seed, state):
    for n in range(23):
        make_order(session, admin, reference=f"REF-{n:02d}", customer="C002" if n % 5 == 0 else "C001")
    first = session.scalars(select(Order).order_by(Order.id)).first()
    session.commit()
    post(as_admin, f"/orders/{first.id}/act", {"action": "submit"})

    page = text(as_admin.get("/orders"))
    assert page.count("<tr data-order=") == 20
    assert "1–20 of 23" in page
    second = text(as_admin.get("/orders?page=2"))
    assert second.count("<tr data-order=") == 3 and "21–23 of 23" in second
    assert text(as_admin.get("/orders?size=50")).count("<tr data-order=") == 23

    submitted = text(as_admin.get("/orders?status=submitted"))
    assert submitted.count("<tr data-order=") == 1 and first.number in submitted
    assert text(as_admin.get("/orders?q=REF-07")).count("<tr data-order=") == 1
    assert text(as_admin.get(f"/orders?customer={seed['remote'].id}")).count("<tr data-order=") == 5
    assert text(as_admin.get("/orders?q=成都蓉锦")).count("<tr data-order=") == 5
    assert text(as_admin.get("/orders?date_from=2000-01-01&date_to=2000-12-31")).count("<tr data-order=") == 0
    # Filters survive paging links.
    assert "status=submitted" in text(as_admin.get("/orders?status=submitted&size=20")).split("Per page")[0]

    ascending = re.findall(r'<tr data-order="([^"]+)"', text(as_admin.get("/orders?sort=number&size=50")))
    assert ascending == sorted(ascending)
    descending = re.findall(r'<tr data-order="([^"]+)"', text(as_admin.get("/orders?sort=-number&size=50")))
    assert descending == sorted(ascending, reverse=True)
    # An unknown sort key falls back to the default instead of failing.
    assert as_admin.get("/orders?sort=password").status_code == 200


@pytest.mark.req("CORE-2")
def test_a_disabled_step_is_skipped_by_orders_taken_on_the_screens(as_admin, session, admin):
    session.add(StepSetting(key="submitted", enabled=False))
    session.commit()
    order = make_order(session, admin)
    page = text(post(as_admin, f"/orders/{order.id}/act", {"action": "submit"}))
    assert "it is now at step “Confirmed”" in page
    assert fresh_order(session, order.id).status == "confirmed"


def test_the_new_order_form_offers_customers_products_and_labels(as_admin, session):
    page = text(as_admin.get("/orders/new"))
    assert '<option value="C001">C001 · 重庆山城机电有限公司</option>' in page
    assert '<option value="P-100" data-name="Gear motor 减速电机" data-unit="台" data-price="1200.00"' in page
    assert '<option value="monthly_settlement">Monthly settlement</option>' in page
    assert '<option value="offline">Offline (sales rep)</option>' in page
    assert 'name="customer"' in page and "autofocus" in cell(page, "customer")
    assert 'for="requested_date"' in page  # every field has its label
    assert "data-row-template" in page and "lines-__index__-product" in page


def test_a_customers_portal_user_orders_for_their_own_customer_only(client, session, admin, seed):
    make_user(session, "buyer@example.com", ["customer"], customer=seed["remote"])
    login(client, "buyer@example.com", PASSWORD)
    form = text(client.get("/orders/new"))
    choices = re.search(r'<select[^>]*name="customer".*?</select>', form, re.S).group(0)
    assert 'value="C002"' in choices and 'value="C001"' not in choices
    refused = post(client, "/orders/new", order_form(customer="C001", channel="portal"))
    assert refused.status_code == 422 and "Unknown customer C001." in text(refused)
    accepted = post(client, "/orders/new", order_form(customer="C002", channel="portal"), follow=False)
    assert accepted.status_code == 302
    assert order_count(session) == 1


def test_a_form_posted_without_its_csrf_token_saves_nothing(as_admin, session):
    response = as_admin.post(
        "/orders/new", data=order_form(), headers={"Referer": "/orders/new"}, follow_redirects=True
    )
    assert "The form had expired, so nothing was saved." in text(response)
    assert order_count(session) == 0
