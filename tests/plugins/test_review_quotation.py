"""Quotations (报价单, RV-1, RV-2): margins worked out by hand, no revenue, the flag at and under
the configured minima with finance and the owner told once, every refusal leaving nothing
changed, a re-quote round starting from the previous lines, and the quotation screen."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import AuditLog, Notification, Order, User
from core.plugins import Registry
from core.services.orders import take_action
from core.settings import set_setting
from core.testing import csrf_token, login, make_order, make_user
from core.workflow import Workflow
from plugins.review import flow, quotation
from plugins.review.errors import ReviewError
from plugins.review.models import ReviewQuotation, ReviewSheet

#: The sample order's untaxed amount: 2 × 1,150.00 + 100 × 12.50.
REVENUE = Decimal("3550.00")


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    """A salesperson (prepares, sees no margins), finance, a production reviewer (neither), the president."""
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "other_sales": make_user(session, "other.sales@example.com", ["sales"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "finance2": make_user(session, "finance2@example.com", ["finance"], branch=hq),
        "production": make_user(session, "production@example.com", ["review_production"], branch=hq),
        "president": make_user(session, "president@example.com", ["president"], branch=hq),
    }


def at_step(session: Session, order: Order, step: str, status: str = "submitted") -> Order:
    """Put ``order`` at ``step`` directly (the quotation rules only look at the step)."""
    order.step = step
    order.status = status
    session.commit()
    return order


def submit(session: Session, registry: Registry, actor: User) -> Order:
    """Enter and submit an order: with only review enabled it reaches department review at once."""
    order = make_order(session, actor, requested_date="2030-03-15")
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def lines(*pairs: tuple[str, str], description: str = "") -> list[dict[str, Any]]:
    return [{"kind": kind, "description": description, "amount": amount} for kind, amount in pairs]


def notices(session: Session, order: Order) -> list[Notification]:
    query = select(Notification).where(
        Notification.template == "review.margin_below_minimum", Notification.order_id == order.id
    )
    return list(session.scalars(query.order_by(Notification.id)))


# --- compute ---------------------------------------------------------------------------------


@pytest.mark.req("RV-2")
def test_margins_worked_out_by_hand():
    margins = quotation.compute(
        Decimal("10000.00"),
        [
            ("material", Decimal("4000.00")),
            ("outsourcing", Decimal("500.00")),
            ("labour", Decimal("1000.00")),
            ("overhead", Decimal("300.00")),
            ("freight", Decimal("200.00")),
            ("tax", Decimal("300.00")),
            ("expense", Decimal("700.00")),
        ],
    )
    assert margins.cost == Decimal("6000.00")
    assert margins.taxes == Decimal("300.00") and margins.expenses == Decimal("700.00")
    assert margins.gross_margin == Decimal("40.00")  # (10000 − 6000) / 10000
    assert margins.expense_ratio == Decimal("7.00")  # 700 / 10000
    assert margins.profit_margin == Decimal("30.00")  # (10000 − 6000 − 300 − 700) / 10000


@pytest.mark.req("RV-2")
def test_percentages_are_rounded_to_two_places_and_may_be_negative():
    margins = quotation.compute(Decimal("3.00"), [("material", Decimal("1.00")), ("expense", Decimal("5.00"))])
    assert margins.gross_margin == Decimal("66.67")
    assert margins.expense_ratio == Decimal("166.67")
    assert margins.profit_margin == Decimal("-100.00")
    assert str(margins.gross_margin) == "66.67"  # two places exactly


@pytest.mark.req("RV-2")
def test_no_revenue_leaves_the_margins_unknown():
    margins = quotation.compute(Decimal("0"), [("material", Decimal("10.00")), ("tax", Decimal("1.00"))])
    assert margins.cost == Decimal("10.00") and margins.taxes == Decimal("1.00")
    assert margins.gross_margin is None and margins.expense_ratio is None and margins.profit_margin is None
    # Nothing earns the outlay back: flagged; without any outlay: not.
    assert quotation.is_below_minimum(margins, Decimal("15"), Decimal("5"))
    assert not quotation.is_below_minimum(quotation.compute(Decimal("0"), []), Decimal("15"), Decimal("5"))


# --- the flag --------------------------------------------------------------------------------


@pytest.mark.req("RV-2")
def test_flag_at_and_below_the_configured_minima(session, admin, seed, people):
    set_setting(session, flow.MIN_GROSS_MARGIN, 20.0)
    set_setting(session, flow.MIN_PROFIT_MARGIN, 10.0)
    session.commit()
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    assert order.untaxed_amount == REVENUE

    # Exactly at both minima: gross (3550 − 2840) / 3550 = 20.00 %, profit (710 − 355) / 3550 = 10.00 %.
    saved = quotation.save(session, people["finance"], order, lines=lines(("material", "2840"), ("expense", "355")))
    assert (saved.gross_margin, saved.profit_margin) == (Decimal("20.00"), Decimal("10.00"))
    assert saved.below_minimum is False

    # Profit margin under its minimum only: 9.97 %.
    saved = quotation.save(session, people["finance"], order, lines=lines(("material", "2840"), ("expense", "356")))
    assert saved.gross_margin == Decimal("20.00") and saved.profit_margin == Decimal("9.97")
    assert saved.below_minimum is True

    # Gross margin under its minimum only (a lower profit minimum): 19.97 %.
    set_setting(session, flow.MIN_PROFIT_MARGIN, 0.0)
    saved = quotation.save(session, people["finance"], order, lines=lines(("material", "2841")))
    assert saved.gross_margin == Decimal("19.97") and saved.below_minimum is True

    # A lower gross minimum clears it on the next save.
    set_setting(session, flow.MIN_GROSS_MARGIN, 19.0)
    saved = quotation.save(session, people["finance"], order, lines=lines(("material", "2841")))
    assert saved.below_minimum is False


@pytest.mark.req("RV-2")
def test_a_newly_flagged_quotation_tells_finance_and_the_owner_once(session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.CONSOLIDATION)
    healthy = lines(("material", "1000"))  # 71.83 %
    poor = lines(("material", "3400"))  # gross 4.23 % < 15 %

    quotation.save(session, people["finance"], order, lines=healthy)
    session.commit()
    assert notices(session, order) == []

    quotation.save(session, people["finance"], order, lines=poor)
    session.commit()
    told = {n.user_id for n in notices(session, order)}
    assert told == {people["finance"].id, people["finance2"].id, people["sales"].id}
    assert "4.23%" in notices(session, order)[0].body

    quotation.save(session, people["finance"], order, lines=poor, note="still poor")
    session.commit()
    assert len(notices(session, order)) == 3  # already flagged: nobody told again

    quotation.save(session, people["finance"], order, lines=healthy)
    quotation.save(session, people["finance"], order, lines=poor)
    session.commit()
    assert len(notices(session, order)) == 6  # flagged anew: told again


# --- saving and its refusals -------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_save_replaces_the_lines_recomputes_from_the_order_and_is_audited(session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    saved = quotation.save(
        session,
        people["sales"],
        order,
        lines=[
            {"kind": "material", "description": "钢材 Q235", "amount": "1200.50"},
            {"kind": "labour", "description": "装配", "amount": Decimal("300")},
            {"kind": "tax", "description": "", "amount": 50},
        ],
        payment_terms="月结 30 天",
        note="first cut",
    )
    session.commit()
    assert saved.number == 1 and saved.revenue == REVENUE
    assert [(line.position, line.kind, line.description, line.amount) for line in saved.lines] == [
        (1, "material", "钢材 Q235", Decimal("1200.50")),
        (2, "labour", "装配", Decimal("300.00")),
        (3, "tax", "", Decimal("50.00")),
    ]
    assert saved.cost == Decimal("1500.50") and saved.taxes == Decimal("50.00")
    assert saved.payment_terms == "月结 30 天" and saved.created_by_id == people["sales"].id

    again = quotation.save(session, people["finance"], order, lines=lines(("freight", "10")))
    session.commit()
    assert again.id == saved.id and [line.kind for line in again.lines] == ["freight"]
    assert session.scalar(select(func.count(ReviewQuotation.id)).where(ReviewQuotation.order_id == order.id)) == 1

    entries = list(
        session.scalars(
            select(AuditLog)
            .where(AuditLog.entity == "review_quotation", AuditLog.order_id == order.id)
            .order_by(AuditLog.id)
        )
    )
    assert [(e.actor_id, e.action) for e in entries] == [(people["sales"].id, "save"), (people["finance"].id, "save")]
    assert entries[1].changes["lines"][1] == [{"kind": "freight", "description": "", "amount": "10.00"}]


def _state(session: Session, order: Order) -> tuple[Any, ...]:
    session.expire_all()
    q = quotation.latest(session, order.id)
    audited = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.entity == "review_quotation"))
    return (q.id if q else None, [(line.kind, line.amount) for line in q.lines] if q else None, audited)


@pytest.mark.req("RV-1")
@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"kind": "bribe", "amount": "10"}, "kind"),
        ({"kind": "material", "amount": "-0.01"}, "amount"),
        ({"kind": "material", "amount": "abc"}, "amount"),
        ({"kind": "material", "amount": "1.005"}, "amount"),
        ({"kind": "material", "amount": ""}, "amount"),
        ({"kind": "material", "amount": "1", "description": "x" * 201}, "description"),
        ({"kind": "material", "amount": "1", "colour": "red"}, "colour"),
    ],
)
def test_bad_lines_are_refused_and_nothing_changes(session, admin, seed, people, bad, field):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    quotation.save(session, people["finance"], order, lines=lines(("material", "100")))
    session.commit()
    before = _state(session, order)
    with pytest.raises(ReviewError) as refused:
        quotation.save(session, people["finance"], order, lines=[{"kind": "labour", "amount": "5"}, bad])
    session.rollback()
    assert refused.value.status == 422 and refused.value.code == "invalid"
    assert list(refused.value.details["lines"]) == [1] and field in refused.value.details["lines"][1]
    assert _state(session, order) == before


@pytest.mark.req("RV-1")
def test_too_many_lines_and_overlong_terms_are_refused(session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    with pytest.raises(ReviewError) as refused:
        quotation.save(session, people["finance"], order, lines=lines(*[("material", "1")] * 201))
    assert refused.value.status == 422 and "200" in refused.value.message
    with pytest.raises(ReviewError) as refused:
        quotation.save(session, people["finance"], order, lines=[], payment_terms="x" * 201)
    assert "payment_terms" in refused.value.details
    session.rollback()
    assert quotation.latest(session, order.id) is None
    # 200 lines are fine.
    assert len(quotation.save(session, people["finance"], order, lines=lines(*[("material", "1")] * 200)).lines) == 200


@pytest.mark.req("RV-1")
@pytest.mark.parametrize(
    ("step", "status"),
    [
        ("draft", "draft"),
        (flow.CREDIT_CHECK, "submitted"),
        (flow.FINAL_APPROVAL, "submitted"),
        ("confirmed", "confirmed"),
    ],
)
def test_outside_review_the_quotation_is_not_changed(session, admin, seed, people, step, status):
    order = at_step(session, make_order(session, people["sales"]), step, status)
    with pytest.raises(ReviewError) as refused:
        quotation.save(session, people["finance"], order, lines=lines(("material", "1")))
    session.rollback()
    assert refused.value.status == 409 and refused.value.code == "not_in_review"
    assert order.number in refused.value.message
    assert quotation.latest(session, order.id) is None


@pytest.mark.req("RV-1")
@pytest.mark.parametrize("step", [flow.DEPARTMENT_REVIEW, flow.CONSOLIDATION, flow.PRESIDENT])
def test_editable_in_review_consolidation_and_at_the_president(session, admin, seed, people, step):
    order = at_step(session, make_order(session, people["sales"]), step)
    assert quotation.save(session, people["finance"], order, lines=lines(("material", "1"))).number == 1


@pytest.mark.req("RV-1")
def test_without_the_permission_or_outside_the_scope_nothing_is_saved(session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    with pytest.raises(ReviewError) as refused:
        quotation.save(session, people["production"], order, lines=lines(("material", "1")))
    assert refused.value.status == 403
    with pytest.raises(ReviewError) as refused:
        quotation.save(session, people["other_sales"], order, lines=lines(("material", "1")))
    assert refused.value.status == 404  # another salesperson's order
    session.rollback()
    assert quotation.latest(session, order.id) is None


# --- rounds ------------------------------------------------------------------------------------


@pytest.mark.req("RV-2")
def test_each_sheet_starts_a_quotation_from_the_previous_lines(session, admin, seed, people):
    order = make_order(session, people["sales"])
    first_sheet = ReviewSheet(order_id=order.id, round=1)
    session.add(first_sheet)
    session.flush()
    first = quotation.on_sheet_opened(session, order, first_sheet)
    assert (first.number, first.sheet_id, first.lines, first.revenue) == (1, first_sheet.id, [], REVENUE)
    assert first.gross_margin == Decimal("100.00") and not first.below_minimum
    first.lines = [
        quotation.ReviewQuotationLine(position=1, kind="material", description="钢材", amount=Decimal("3400"))
    ]
    first.payment_terms = "预付 30%"
    session.flush()

    second_sheet = ReviewSheet(order_id=order.id, round=2)
    session.add(second_sheet)
    session.flush()
    second = quotation.on_sheet_opened(session, order, second_sheet)
    session.commit()
    assert second.number == 2 and second.sheet_id == second_sheet.id and second.id != first.id
    assert [(line.kind, line.description, line.amount) for line in second.lines] == [
        ("material", "钢材", Decimal("3400.00"))
    ]
    assert second.payment_terms == "预付 30%"
    assert second.gross_margin == Decimal("4.23") and second.below_minimum  # computed and flagged on opening
    assert quotation.latest(session, order.id).id == second.id
    assert [q.number for q in quotation.all_for(session, order.id)] == [2, 1]
    assert [line.amount for line in first.lines] == [Decimal("3400.00")]  # the earlier one is kept


@pytest.mark.req("RV-1")
def test_submitting_opens_quotation_1_and_a_requote_round_copies_it_into_2(session, registry, admin, seed, people):
    order = submit(session, registry, people["sales"])
    assert order.step == flow.DEPARTMENT_REVIEW
    first = quotation.latest(session, order.id)
    assert first is not None and first.number == 1 and first.revenue == order.untaxed_amount
    quotation.save(session, people["finance"], order, lines=lines(("material", "2000"), ("expense", "100")))
    session.commit()

    workflow = Workflow(registry, session)
    workflow.apply(order, "not_acceptable", flow.PRESIDENT, None, "finance rejected")
    workflow.apply(order, "requote", flow.DEPARTMENT_REVIEW, people["president"], "new prices")
    session.commit()

    second = quotation.latest(session, order.id)
    assert second.number == 2 and second.id != first.id
    assert [(line.kind, line.amount) for line in second.lines] == [
        ("material", Decimal("2000.00")),
        ("expense", Decimal("100.00")),
    ]
    assert second.sheet_id != first.sheet_id


# --- the screen --------------------------------------------------------------------------------


def _page(order: Order) -> str:
    return f"/review/orders/{order.id}/quotation"


@pytest.mark.req("RV-2")
def test_the_screen_saves_edits_and_shows_margins_and_the_badge(client, session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    login(client, "finance@example.com", "test-pass-1")
    page = client.get(_page(order))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert order.number in html and 'name="kind-0"' in html and "Below minimum" not in html

    token = csrf_token(client, _page(order))
    form = {
        "csrf_token": token,
        "kind-0": "material",
        "description-0": "Steel",
        "amount-0": "3000",
        "kind-1": "expense",
        "description-1": "Commission",
        "amount-1": "100",
        "kind-2": "material",
        "description-2": "",
        "amount-2": "",  # a blank row: dropped
        "payment_terms": "30 days",
    }
    saved = client.post(_page(order), data=form)
    assert saved.status_code == 302 and saved.location.endswith(_page(order))
    session.expire_all()
    latest = quotation.latest(session, order.id)
    assert [(line.kind, line.amount) for line in latest.lines] == [
        ("material", Decimal("3000.00")),
        ("expense", Decimal("100.00")),
    ]
    html = client.get(_page(order)).get_data(as_text=True)
    assert "Quotation 1 saved." in html
    assert "15.49%" in html and "12.68%" in html  # gross (3550 − 3000) / 3550, profit (550 − 100) / 3550
    assert "review-below-minimum" not in html  # 15.49 % ≥ 15 %, 12.68 % ≥ 5 %

    form.update({"csrf_token": csrf_token(client, _page(order)), "amount-0": "3100"})
    assert client.post(_page(order), data=form).status_code == 302
    html = client.get(_page(order)).get_data(as_text=True)
    assert "margins are below the minimum" in html  # the flash says so
    assert "15.49%" not in html and "9.86%" in html  # gross 12.68 % < 15 %: flagged
    assert "review-below-minimum" in html and "Below minimum" in html


@pytest.mark.req("RV-2")
def test_the_screen_refuses_bad_rows_beside_the_field(client, session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.CONSOLIDATION)
    login(client, "finance@example.com", "test-pass-1")
    token = csrf_token(client, _page(order))
    refused = client.post(
        _page(order), data={"csrf_token": token, "kind-0": "material", "description-0": "Steel", "amount-0": "-5"}
    )
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert "An amount cannot be negative." in html and 'value="-5"' in html
    session.expire_all()
    assert quotation.latest(session, order.id) is None

    more = client.post(_page(order), data={"csrf_token": token, "add_row": "1", "kind-0": "labour", "amount-0": "5"})
    assert more.status_code == 200
    assert 'name="kind-2"' in more.get_data(as_text=True)  # the row kept, plus two blank ones
    assert quotation.latest(session, order.id) is None  # adding a row saves nothing


@pytest.mark.req("RV-2")
def test_the_screen_is_read_only_outside_review(client, session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.FINAL_APPROVAL)
    login(client, "finance@example.com", "test-pass-1")
    html = client.get(_page(order)).get_data(as_text=True)
    assert 'name="kind-0"' not in html
    token = csrf_token(client, "/orders")
    refused = client.post(_page(order), data={"csrf_token": token, "kind-0": "material", "amount-0": "1"})
    assert refused.status_code == 409


@pytest.mark.req("RV-2")
def test_a_salesperson_prepares_costs_without_seeing_the_margins(client, session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    quotation.save(session, people["finance"], order, lines=lines(("material", "1000")))
    session.commit()
    login(client, "sales@example.com", "test-pass-1")
    html = client.get(_page(order)).get_data(as_text=True)
    assert 'name="kind-0"' in html and "1000.00" in html
    assert "71.83%" not in html and "You may not see costs and margins." in html


@pytest.mark.req("RV-2")
def test_the_screen_answers_403_without_permission_and_404_outside_the_scope(client, session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    login(client, "production@example.com", "test-pass-1")
    assert client.get(_page(order)).status_code == 403
    token = csrf_token(client, "/orders")
    assert client.post(_page(order), data={"csrf_token": token, "amount-0": "1"}).status_code == 403

    client.post("/logout", data={"csrf_token": token})
    login(client, "other.sales@example.com", "test-pass-1")
    assert client.get(_page(order)).status_code == 404
    assert client.get("/review/orders/999999/quotation").status_code == 404
    token = csrf_token(client, "/orders")
    assert (
        client.post(_page(order), data={"csrf_token": token, "kind-0": "material", "amount-0": "1"}).status_code == 404
    )
    assert quotation.latest(session, order.id) is None


@pytest.mark.req("RV-2")
def test_earlier_quotations_are_listed_and_shown_read_only(client, session, admin, seed, people):
    order = at_step(session, make_order(session, people["sales"]), flow.DEPARTMENT_REVIEW)
    for number in (1, 2):
        sheet = ReviewSheet(order_id=order.id, round=number)
        session.add(sheet)
        session.flush()
        quotation.on_sheet_opened(session, order, sheet)
    session.commit()
    login(client, "finance@example.com", "test-pass-1")
    html = client.get(_page(order)).get_data(as_text=True)
    assert f"{_page(order)}?number=1" in html
    earlier = client.get(f"{_page(order)}?number=1").get_data(as_text=True)
    assert "earlier quotation" in earlier and 'name="kind-0"' not in earlier
    assert client.get(f"{_page(order)}?number=9").status_code == 404
