"""Review's screens (RV-1, RV-4, RV-6, RV-7): my review tasks, the review sheet page with its verdict
forms, consolidation and negotiation, the approvals inbox with its grant form, and the order-page
panel — each for the right users only, in English and Chinese."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Order, User
from core.plugins import Registry
from core.services.orders import take_action
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.review import flow, sheets
from plugins.review.models import ReviewCreditException, ReviewTask, ReviewVerdict

FAR = "2030-03-15"
PRODUCTION = {"capacity_ok": True, "materials_ok": True, "completion_date": "2030-02-20"}
FINANCE = {"cost": "2000", "gross_margin": "30", "profit_margin": "12", "payment_terms": "30 days", "risk": "low"}
#: 250 gear motors at 1000: 250,000 before tax, beyond a sales manager's limit of 200,000.
LARGE = [{"product": "P-100", "quantity": "250", "unit_price": "1000.00"}]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "production": make_user(session, "production@example.com", ["review_production"], branch=hq),
        "finance": make_user(session, "finance@example.com", ["finance"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "vp": make_user(session, "vp@example.com", ["vice_president"], branch=hq),
        "warehouse": make_user(session, "warehouse@example.com", ["warehouse"], branch=hq),
        "cd_sales": make_user(session, "cd.sales@example.com", ["sales"], branch=seed["cd"]),
        "zh_production": make_user(
            session, "zh.production@example.com", ["review_production"], branch=hq, language="zh_CN"
        ),
    }


class CreditStanding:
    """Stands in for billing: answers review's credit question with ``reasons``."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    @hookimpl(optionalhook=True)
    def ordo_review_credit_standing(self, order: Order, session: Session) -> list[str]:
        return list(self.reasons)


@pytest.fixture
def standing(registry: Registry) -> Iterator[CreditStanding]:
    plugin = CreditStanding()
    registry.pm.register(plugin, name="test_credit")
    yield plugin
    registry.pm.unregister(name="test_credit")


def submit(session: Session, registry: Registry, actor: User, **overrides: Any) -> Order:
    """A regular order (production and finance review it) entered by ``actor`` and submitted."""
    order = make_order(session, actor, requested_date=overrides.pop("requested_date", FAR), **overrides)
    take_action(session, registry, actor, order, "submit")
    session.commit()
    return order


def task_of(session: Session, order: Order, code: str) -> ReviewTask:
    sheet = sheets.current_sheet(session, order.id)
    assert sheet is not None
    return [t for t in sheet.tasks if t.department.code == code][-1]


def answer_all(session: Session, registry: Registry, people: dict[str, User], order: Order) -> None:
    """Production and finance approve: the order goes on to consolidation."""
    for code, figures in (("production", PRODUCTION), ("finance", FINANCE)):
        sheets.record_verdict(
            session, registry, people[code], task_of(session, order, code), verdict="approve", figures=figures
        )
    session.commit()
    assert order.step == flow.CONSOLIDATION


def reread(session: Session) -> None:
    session.rollback()
    session.expire_all()


def as_user(client: Any, user: User) -> Any:
    client.get("/logout")
    login(client, user.email, PASSWORD)
    return client


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def rows(page: str, table: str) -> list[str]:
    body = re.search(rf'<table[^>]*id="{table}".*?</table>', page, re.S)
    assert body, f"no table {table}"
    return re.findall(r'<tr[^>]*? data-order="([^"]+)"', body.group(0))


# --- my review tasks ---------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_my_tasks_lists_my_departments_tasks_urgent_first_with_overdue_in_red(client, session, registry, people):
    calm = submit(session, registry, people["sales"], reference="A")
    urgent = submit(session, registry, people["sales"], reference="B", urgency="urgent")
    late = submit(session, registry, people["sales"], reference="C")
    task_of(session, late, "production").due_date = dt.date(2020, 1, 6)
    session.commit()
    as_user(client, people["production"])
    page = html(client.get("/review/tasks"))
    assert rows(page, "review-tasks") == [urgent.number, late.number, calm.number]
    row = re.search(rf'<tr data-task="\d+" data-order="{late.number}"[^>]*>', page).group(0)
    assert "table-danger" in row and 'data-state="overdue"' in row
    assert "Production" in page and "重庆山城机电有限公司" in page
    assert rows(html(client.get("/review/tasks?status=overdue")), "review-tasks") == [late.number]
    # Finance has its own tasks; the finance reviewer sees the same orders, not production's tasks.
    as_user(client, people["finance"])
    finance_page = html(client.get("/review/tasks"))
    assert len(rows(finance_page, "review-tasks")) == 3 and "Production" not in finance_page.split("review-tasks")[1]


@pytest.mark.req("RV-1")
def test_answered_tasks_leave_the_open_list_and_show_under_answered(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    sheets.record_verdict(
        session,
        registry,
        people["production"],
        task_of(session, order, "production"),
        verdict="approve",
        figures=PRODUCTION,
    )
    session.commit()
    as_user(client, people["production"])
    assert rows(html(client.get("/review/tasks")), "review-tasks") == []
    answered = html(client.get("/review/tasks?status=answered"))
    assert rows(answered, "review-tasks") == [order.number] and "Approve" in answered
    assert rows(html(client.get("/review/tasks?status=all")), "review-tasks") == [order.number]


def test_the_screens_need_the_review_permission(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    as_user(client, people["warehouse"])
    for path in ("/review/tasks", "/review/approvals", f"/review/orders/{order.id}"):
        assert client.get(path).status_code == 403, path
    token = csrf_token(client, "/orders")
    post = client.post(
        f"/review/orders/{order.id}/tasks/{task_of(session, order, 'production').id}/verdict",
        data={"csrf_token": token, "verdict": "approve"},
    )
    assert post.status_code == 403
    assert 'href="/review/tasks"' not in html(client.get("/orders"))


@pytest.mark.req("CORE-4")
def test_an_order_outside_the_scope_answers_404(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    as_user(client, people["cd_sales"])
    assert client.get(f"/review/orders/{order.id}").status_code == 404
    assert client.get("/review/orders/999999").status_code == 404
    token = csrf_token(client, "/review/tasks")
    assert client.post(f"/review/orders/{order.id}/act", data={"csrf_token": token}).status_code == 404


@pytest.mark.req("RV-1")
@pytest.mark.parametrize("who", ["production", "zh_production"])
def test_every_screen_renders_in_english_and_chinese(client, session, registry, people, who):
    order = submit(session, registry, people["sales"])
    as_user(client, people[who])
    chinese = who.startswith("zh")
    for path in ("/review/tasks", f"/review/orders/{order.id}", "/review/approvals", f"/orders/{order.id}"):
        response = client.get(path)
        assert response.status_code == 200, path
        page = html(response)
        assert ('<html lang="zh-CN"' in page) is chinese, path
    menu = html(client.get("/review/tasks"))
    assert 'href="/review/tasks"' in menu and 'href="/review/approvals"' in menu


# --- the review sheet and its verdict forms ----------------------------------------------------


def verdict_form(page: str, task: ReviewTask) -> str:
    match = re.search(rf'<form[^>]*id="verdict-form-{task.id}".*?</form>', page, re.S)
    return match.group(0) if match else ""


@pytest.mark.req("RV-1")
def test_a_reviewer_gives_the_verdict_with_the_departments_figures_through_the_form(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    production, finance = task_of(session, order, "production"), task_of(session, order, "finance")
    as_user(client, people["production"])
    page = html(client.get(f"/review/orders/{order.id}"))
    form = verdict_form(page, production)
    assert form and not verdict_form(page, finance)  # only the forms of the user's departments
    for name in ("figure-capacity_ok", "figure-materials_ok", "figure-completion_date"):
        assert f'name="{name}"' in form
    assert f'type="date" id="f-{production.id}-figure-completion_date"' in form
    assert "Capacity available" in form and "Proposed completion date" in form
    response = client.post(
        f"/review/orders/{order.id}/tasks/{production.id}/verdict",
        data={
            "csrf_token": csrf_token(client, f"/review/orders/{order.id}"),
            "verdict": "approve_with_conditions",
            "conditions": "Materials ordered by 2030-01-20",
            "figure-capacity_ok": "yes",
            "figure-materials_ok": "no",
            "figure-completion_date": "2030-02-20",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200 and "Your verdict on order" in html(response)
    reread(session)
    (row,) = session.scalars(select(ReviewVerdict).where(ReviewVerdict.task_id == production.id)).all()
    assert row.verdict == "approve_with_conditions" and row.decided_by_id == people["production"].id
    assert row.figures["capacity_ok"] is True and row.figures["materials_ok"] is False
    assert row.proposed_date == dt.date(2030, 2, 20)
    # The history shows it with the figures' labels; the task has no form any more.
    page = html(client.get(f"/review/orders/{order.id}"))
    assert "Materials ordered by 2030-01-20" in page and "Materials available" in page
    assert not verdict_form(page, production)


@pytest.mark.req("RV-1")
def test_an_incomplete_verdict_comes_back_with_the_errors_and_nothing_saved(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    production = task_of(session, order, "production")
    as_user(client, people["production"])
    response = client.post(
        f"/review/orders/{order.id}/tasks/{production.id}/verdict",
        data={
            "csrf_token": csrf_token(client, f"/review/orders/{order.id}"),
            "verdict": "reject",
            "figure-capacity_ok": "no",
            "figure-completion_date": "next week",
        },
    )
    assert response.status_code == 422
    form = verdict_form(html(response), production)
    assert "is-invalid" in form and "Give a date as YYYY-MM-DD." in form
    assert 'value="next week"' in form  # what was typed is kept
    reread(session)
    assert session.scalars(select(ReviewVerdict).where(ReviewVerdict.task_id == production.id)).all() == []
    assert session.get(ReviewTask, production.id).status == "open"


@pytest.mark.req("RV-1")
def test_a_user_outside_the_department_cannot_post_its_verdict(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    finance = task_of(session, order, "finance")
    as_user(client, people["production"])
    response = client.post(
        f"/review/orders/{order.id}/tasks/{finance.id}/verdict",
        data={"csrf_token": csrf_token(client, f"/review/orders/{order.id}"), "verdict": "approve", **FINANCE},
    )
    assert response.status_code == 403
    reread(session)
    assert session.get(ReviewTask, finance.id).status == "open"


# --- consolidation and negotiation -----------------------------------------------------------


@pytest.mark.req("RV-4")
def test_consolidation_shows_every_verdict_and_a_negotiated_price_reopens_only_finance(
    client, session, registry, people
):
    order = submit(session, registry, people["sales"])
    answer_all(session, registry, people, order)
    as_user(client, people["sales"])
    page = html(client.get(f"/review/orders/{order.id}"))
    table = re.search(r'id="consolidation-table".*?</table>', page, re.S).group(0)
    assert 'data-department="production"' in table and 'data-department="finance"' in table
    assert "2030-02-20" in table  # production's proposed completion date
    assert 'id="negotiation-form"' in page and 'data-action="send_for_approval"' in page
    line = order.lines[0]
    response = client.post(
        f"/review/orders/{order.id}/negotiate",
        data={
            "csrf_token": csrf_token(client, f"/review/orders/{order.id}"),
            f"price-{line.id}": "1100",
            f"quantity-{line.id}": str(line.quantity),
            "requested_date": FAR,
            "note": "Customer accepts 1100 per unit",
        },
        follow_redirects=True,
    )
    assert response.status_code == 200 and "Negotiated changes saved" in html(response)
    reread(session)
    order = session.get(Order, order.id)
    assert order.step == flow.DEPARTMENT_REVIEW and order.lines[0].unit_price == Decimal("1100")
    assert task_of(session, order, "finance").status == "open"
    assert task_of(session, order, "production").status == "answered"
    assert "Customer accepts 1100 per unit" in html(client.get(f"/review/orders/{order.id}"))


@pytest.mark.req("RV-4")
def test_a_bad_negotiation_is_refused_beside_its_fields(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    answer_all(session, registry, people, order)
    as_user(client, people["sales"])
    line = order.lines[0]
    token = csrf_token(client, f"/review/orders/{order.id}")
    bad = client.post(
        f"/review/orders/{order.id}/negotiate",
        data={"csrf_token": token, f"price-{line.id}": "-5", "requested_date": "soon"},
    )
    assert bad.status_code == 422
    assert "Give a unit price of zero or more." in html(bad) and "Give a date as YYYY-MM-DD." in html(bad)
    unchanged = client.post(
        f"/review/orders/{order.id}/negotiate",
        data={"csrf_token": token, f"price-{line.id}": str(line.unit_price), "requested_date": FAR},
    )
    assert unchanged.status_code == 422 and "Nothing was changed" in html(unchanged)
    reread(session)
    assert session.get(Order, order.id).step == flow.CONSOLIDATION
    # Negotiating needs review.consolidate: a reviewer may not.
    as_user(client, people["production"])
    token = csrf_token(client, f"/review/orders/{order.id}")
    assert client.post(f"/review/orders/{order.id}/negotiate", data={"csrf_token": token}).status_code == 403


@pytest.mark.req("RV-4")
def test_sales_sends_the_order_for_approval_from_the_sheet(client, session, registry, people):
    order = submit(session, registry, people["sales"])
    answer_all(session, registry, people, order)
    as_user(client, people["sales"])
    response = client.post(
        f"/review/orders/{order.id}/act",
        data={
            "csrf_token": csrf_token(client, f"/review/orders/{order.id}"),
            "action": "send_for_approval",
            "version": str(order.version),
        },
        follow_redirects=True,
    )
    assert response.status_code == 200 and "Final approval" in html(response)
    reread(session)
    assert session.get(Order, order.id).step == flow.FINAL_APPROVAL


# --- the approvals inbox -------------------------------------------------------------------------


def to_final_approval(session: Session, registry: Registry, people: dict[str, User], **overrides: Any) -> Order:
    order = submit(session, registry, people["sales"], **overrides)
    answer_all(session, registry, people, order)
    take_action(session, registry, people["sales"], order, "send_for_approval")
    session.commit()
    assert order.step == flow.FINAL_APPROVAL
    return order


@pytest.mark.req("RV-6")
def test_the_inbox_lists_only_the_approvals_within_the_users_limit(client, session, registry, people):
    small = to_final_approval(session, registry, people, reference="S")
    large = to_final_approval(session, registry, people, reference="L", lines=LARGE)
    as_user(client, people["manager"])
    assert rows(html(client.get("/review/approvals")), "review-approvals") == [small.number]
    as_user(client, people["gm"])
    page = html(client.get("/review/approvals"))
    assert rows(page, "review-approvals") == [small.number, large.number]
    assert "General manager" in page  # the approver the limits name for the large order
    as_user(client, people["sales"])
    assert rows(html(client.get("/review/approvals")), "review-approvals") == []


@pytest.mark.req("RV-6")
def test_an_approver_approves_from_the_inbox(client, session, registry, people):
    order = to_final_approval(session, registry, people)
    as_user(client, people["manager"])
    page = html(client.get("/review/approvals"))
    assert 'data-action="approve"' in page
    response = client.post(
        f"/review/approvals/{order.id}/act",
        data={"csrf_token": csrf_token(client, "/review/approvals"), "action": "approve", "version": order.version},
        follow_redirects=True,
    )
    assert response.status_code == 200 and "done" in html(response)
    reread(session)
    assert session.get(Order, order.id).step == "submitted"
    assert rows(html(client.get("/review/approvals")), "review-approvals") == []


@pytest.mark.req("RV-6")
def test_an_approver_under_the_limit_is_refused_from_the_inbox(client, session, registry, people):
    order = to_final_approval(session, registry, people, lines=LARGE)
    as_user(client, people["manager"])
    response = client.post(
        f"/review/approvals/{order.id}/act",
        data={"csrf_token": csrf_token(client, "/review/approvals"), "action": "approve", "version": order.version},
        follow_redirects=True,
    )
    assert "refused" in html(response) or "may not" in html(response)
    reread(session)
    assert session.get(Order, order.id).step == flow.FINAL_APPROVAL


@pytest.mark.req("RV-7")
def test_a_credit_hold_waits_in_the_inbox_of_each_role_still_to_grant(client, session, registry, people, standing):
    standing.reasons = ["Invoice INV-7 is 45 days overdue."]
    order = submit(session, registry, people["sales"])
    assert order.step == flow.CREDIT_CHECK
    as_user(client, people["manager"])
    assert rows(html(client.get("/review/approvals")), "review-approvals") == []
    as_user(client, people["vp"])
    page = html(client.get("/review/approvals"))
    assert rows(page, "review-approvals") == [order.number]
    assert "INV-7 is 45 days overdue" in page and f'id="grant-{order.id}"' in page
    token = csrf_token(client, "/review/approvals")
    empty = client.post(f"/review/approvals/{order.id}/grant", data={"csrf_token": token, "reason": " "})
    assert empty.status_code == 302
    reread(session)
    assert session.scalars(select(ReviewCreditException)).all() == []
    granted = client.post(
        f"/review/approvals/{order.id}/grant",
        data={"csrf_token": token, "reason": "Long-standing customer; paying next week"},
        follow_redirects=True,
    )
    assert "other roles still have to grant" in html(granted)
    assert rows(html(client.get("/review/approvals")), "review-approvals") == []  # the VP has granted
    as_user(client, people["gm"])
    assert rows(html(client.get("/review/approvals")), "review-approvals") == [order.number]
    client.post(
        f"/review/approvals/{order.id}/grant",
        data={"csrf_token": csrf_token(client, "/review/approvals"), "reason": "Agreed with the VP"},
    )
    reread(session)
    assert session.get(Order, order.id).step == flow.DEPARTMENT_REVIEW
    roles = sorted(e.role_code for e in session.scalars(select(ReviewCreditException)))
    assert roles == ["general_manager", "vice_president"]


# --- the order-page panel ---------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_the_order_page_shows_the_review_panel_once_reviewed(client, session, registry, people):
    draft = make_order(session, people["sales"], requested_date=FAR)
    order = submit(session, registry, people["sales"], reference="R")
    sheets.record_verdict(
        session,
        registry,
        people["production"],
        task_of(session, order, "production"),
        verdict="approve",
        figures=PRODUCTION,
    )
    session.commit()
    as_user(client, people["sales"])
    page = html(client.get(f"/orders/{order.id}"))
    panel = re.search(r'<div class="review-panel" id="review-panel">.*?</div>\s*</div>', page, re.S)
    assert panel, "no review panel"
    assert 'data-task="production" data-verdict="approve"' in panel.group(0)
    assert 'data-task="finance" data-verdict=""' in panel.group(0)
    assert f'href="/review/orders/{order.id}"' in panel.group(0)
    assert 'id="review-panel"' not in html(client.get(f"/orders/{draft.id}"))


@pytest.mark.req("RV-7")
def test_the_panel_and_the_sheet_show_a_credit_hold(client, session, registry, people, standing):
    standing.reasons = ["Credit limit exceeded."]
    order = submit(session, registry, people["sales"])
    as_user(client, people["sales"])
    for path in (f"/orders/{order.id}", f"/review/orders/{order.id}"):
        page = html(client.get(path))
        assert 'data-review="credit-hold"' in page and "Credit limit exceeded." in page, path
