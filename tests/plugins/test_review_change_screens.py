"""Change request screens (RV-8, RV-9, CORE-5): sales fills in the change request form (订单变更申请表),
the affected departments assess it on the request page, the approver approves it, and the
revisions page shows what changed; refusals come back beside the fields with nothing saved."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from core.models import Order, StepSetting, User
from core.plugins import Registry
from core.services.orders import take_action
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.review import revisions
from plugins.review.flow import CONSOLIDATION, CREDIT_CHECK, DEPARTMENT_REVIEW, FINAL_APPROVAL
from plugins.review.models import ReviewChangeRequest

FAR = "2030-03-15"
LATER = "2030-04-30"
REVIEW_STEPS = (CREDIT_CHECK, DEPARTMENT_REVIEW, CONSOLIDATION, FINAL_APPROVAL)


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
        "other_sales": make_user(session, "sales2@example.com", ["sales"], branch=hq),
        "manager": make_user(session, "manager@example.com", ["sales_manager"], branch=hq),
        "tech": make_user(session, "tech@example.com", ["review_technical"], branch=hq, language="zh_CN"),
        "prod": make_user(session, "prod@example.com", ["review_production"], branch=hq),
        "purch": make_user(session, "purch@example.com", ["review_purchasing"], branch=hq),
        "quality": make_user(session, "quality@example.com", ["review_quality"], branch=hq),
    }


@pytest.fixture
def order(session: Session, registry: Registry, people: dict[str, User]) -> Order:
    """A confirmed order (review's steps switched off to get there, then on again)."""
    session.add_all(StepSetting(key=key, enabled=False) for key in REVIEW_STEPS)
    session.commit()
    order = make_order(session, people["sales"], requested_date=FAR)
    take_action(session, registry, people["sales"], order, "submit")
    take_action(session, registry, people["manager"], order, "confirm")
    session.execute(delete(StepSetting).where(StepSetting.key.in_(REVIEW_STEPS)))
    session.commit()
    return order


def as_user(client: FlaskClient, user: User) -> FlaskClient:
    client.get("/logout")
    login(client, user.email, PASSWORD)
    return client


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def form_of(order: Order, **changes: str) -> dict[str, str]:
    """The request form as the page fills it in, with ``changes``."""
    data = {
        "kind": "change",
        "reason": "客户追加数量，交期顺延",
        "scope": "",
        "requested_date": FAR,
        "specification": "",
        "expected_days": "3",
        "new_delivery_date": LATER,
        "rewind_to": DEPARTMENT_REVIEW,
        "ship_to-contact": order.ship_to_contact,
        "ship_to-phone": order.ship_to_phone,
        "ship_to-province": order.ship_to_province,
        "ship_to-city": order.ship_to_city,
        "ship_to-address": order.ship_to_address,
        f"impact-{DEPARTMENT_REVIEW}": "生产部重新评审产能",
    }
    for index, line in enumerate(order.lines):
        data[f"lines-{index}-line_id"] = str(line.id)
        data[f"lines-{index}-quantity"] = format(line.quantity.normalize(), "f")
        data[f"lines-{index}-unit_price"] = format(line.unit_price.normalize(), "f")
        data[f"lines-{index}-description"] = line.description
    data.update(changes)
    return data


def post(client: FlaskClient, path: str, data: dict[str, str], follow: bool = False) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/orders")}, follow_redirects=follow)


@pytest.mark.req("RV-8")
@pytest.mark.req("CORE-5")
def test_form_to_request_to_assessments_to_approval_and_the_revision_diff(client, session, registry, people, order):
    motor = next(line for line in order.lines if line.product.sku == "P-100")
    as_user(client, people["sales"])
    form = client.get(f"/review/orders/{order.id}/changes/new")
    assert form.status_code == 200 and 'name="lines-0-quantity"' in html(form)
    index = [line.id for line in order.lines].index(motor.id)
    done = post(
        client,
        f"/review/orders/{order.id}/changes/new",
        form_of(order, **{f"lines-{index}-quantity": "5", "requested_date": LATER}),
    )
    assert done.status_code == 302
    change = session.scalars(select(ReviewChangeRequest)).one()
    assert done.headers["Location"].endswith(f"/review/changes/{change.id}")
    assert change.impact == {DEPARTMENT_REVIEW: "生产部重新评审产能"} and change.expected_days == 3
    assert {"lines", "requested_date"} <= set(change.content)
    assert sorted(a.department.code for a in change.assessments) == ["production", "purchasing", "technical"]
    listed = html(client.get("/review/changes/?status=assessing"))
    assert f'data-request="{change.id}"' in listed

    # Each affected department assesses on the request page (the technical reviewer reads Chinese).
    for who in ("tech", "prod", "purch"):
        as_user(client, people[who])
        page = html(client.get(f"/review/changes/{change.id}"))
        assert f'action="/review/changes/{change.id}/assess"' in page
        if who == "tech":
            assert "技术部" in page  # the department in the reader's language
        answer = post(client, f"/review/changes/{change.id}/assess", {"verdict": "approve", "comment": ""}, True)
        assert answer.status_code == 200 and 'class="alert alert-success' in html(answer), html(answer)[-3000:]
    session.rollback()
    session.expire_all()
    assert session.get(ReviewChangeRequest, change.id).status == "pending_approval"

    # Quality is not affected: no form, and a posted assessment is refused with nothing saved.
    as_user(client, people["quality"])
    assert "/assess" not in html(client.get(f"/review/changes/{change.id}"))
    refused = post(client, f"/review/changes/{change.id}/assess", {"verdict": "approve"}, follow=True)
    assert "assessed" in html(refused) or "affected department" in html(refused)

    as_user(client, people["manager"])
    page = html(client.get(f"/review/changes/{change.id}"))
    assert 'id="change-decide"' in page
    approved = post(client, f"/review/changes/{change.id}/decide", {"decision": "approve", "reason": "OK"}, follow=True)
    assert approved.status_code == 200 and "approved" in html(approved)
    session.rollback()
    session.expire_all()
    order = session.get(Order, order.id)
    assert next(line for line in order.lines if line.id == motor.id).quantity == Decimal("5")
    assert (order.status, order.step) == ("submitted", DEPARTMENT_REVIEW)
    assert [r.number for r in revisions.revisions_of(session, order.id)] == [1, 2]

    diff = html(client.get(f"/review/orders/{order.id}/revisions?a=1&b=2"))
    assert f'data-what="lines.{motor.id}.quantity"' in diff and 'data-what="requested_date"' in diff
    assert re.search(r"<td[^>]*>2</td>\s*<td[^>]*>5</td>", diff)


@pytest.mark.req("RV-8")
def test_bad_input_comes_back_beside_the_fields_and_nothing_is_saved(client, session, registry, people, order):
    as_user(client, people["sales"])
    page = post(
        client,
        f"/review/orders/{order.id}/changes/new",
        form_of(order, reason="", **{"lines-0-quantity": "-1", "expected_days": "many"}),
    )
    assert page.status_code == 422
    body = html(page)
    assert "is-invalid" in body and "Quantity must be greater than zero." in body
    assert "This field is required." in body and 'value="many"' in body
    nothing = post(client, f"/review/orders/{order.id}/changes/new", form_of(order))
    assert nothing.status_code == 422 and "Nothing would change" in html(nothing)
    assert session.scalar(select(func.count()).select_from(ReviewChangeRequest)) == 0


@pytest.mark.req("RV-9")
def test_a_cancellation_request_through_the_screens_cancels_with_its_reason(client, session, registry, people, order):
    as_user(client, people["sales"])
    assert 'id="kind-cancel" value="cancel" checked' in html(
        client.get(f"/review/orders/{order.id}/changes/new?kind=cancel")
    )
    post(
        client,
        f"/review/orders/{order.id}/changes/new",
        {"kind": "cancel", "reason": "项目取消", "rewind_to": ""},
    )
    change = session.scalars(select(ReviewChangeRequest)).one()
    assert change.kind == "cancel" and change.status == "assessing"
    as_user(client, people["manager"])
    early = post(client, f"/review/changes/{change.id}/decide", {"decision": "approve"}, follow=True)
    assert "not waiting for approval" in html(early)
    rejected = post(client, f"/review/changes/{change.id}/decide", {"decision": "reject", "reason": ""}, follow=True)
    assert "Say why" in html(rejected) or "not waiting" in html(rejected)
    session.rollback()
    session.expire_all()
    assert session.get(Order, order.id).status == "confirmed"


def test_the_screens_need_their_permissions_and_the_order_in_scope(client, session, registry, people, order):
    as_user(client, people["tech"])
    assert client.get(f"/review/orders/{order.id}/changes/new").status_code == 403
    assert client.get("/review/changes/").status_code == 200
    as_user(client, people["other_sales"])  # sees only the orders they own
    assert client.get(f"/review/orders/{order.id}/changes/new").status_code == 404
    assert client.get(f"/review/orders/{order.id}/revisions").status_code == 404
    as_user(client, people["sales"])
    revisions_page = html(client.get(f"/review/orders/{order.id}/revisions"))
    assert 'data-revision="1"' in revisions_page and 'id="new-change"' in revisions_page


def test_a_draft_order_sends_the_user_back_to_edit_it(client, session, registry, people):
    draft = make_order(session, people["sales"], requested_date=FAR)
    as_user(client, people["sales"])
    answer = client.get(f"/review/orders/{draft.id}/changes/new")
    assert answer.status_code == 302 and answer.headers["Location"].endswith(f"/orders/{draft.id}")
