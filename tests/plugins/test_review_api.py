"""Review's REST API (``/api/v1/review``): tasks and verdicts, the review sheet, negotiation,
quotations, credit exceptions and change requests — each endpoint's answer, its refusals
(403, 404, 409, 422, nothing changed) and the data scope (an order outside it answers 404),
driven through the real app with only review enabled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Order, User
from core.plugins import Registry
from core.services.orders import take_action
from core.testing import ApiCaller, make_order, make_user, token_for
from plugins.review.models import ReviewChangeRequest, ReviewCreditException, ReviewVerdict

BASE = "/api/v1/review"
#: The reviewer (key in ``people``) of each shipped department.
REVIEWER = {
    "technical": "technical",
    "production": "production",
    "quality": "quality",
    "purchasing": "purchasing",
    "finance": "finance",
}
FIGURES: dict[str, dict[str, Any]] = {
    "technical": {"feasible": True, "solution_date": "2027-01-10"},
    "production": {"capacity_ok": True, "materials_ok": True, "completion_date": "2027-03-20"},
    "quality": {"achievable": True, "stated_completely": True},
    "purchasing": {"material_cost": "1000.00", "in_line_with_market": True},
    "finance": {
        "cost": "2800.00",
        "gross_margin": "21.50",
        "profit_margin": "8.00",
        "payment_terms": "月结 30 天",
        "risk": "low",
    },
}
NON_REGULAR = [{"product": "P-200", "quantity": "1", "unit_price": "8800.00"}]


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def registry(state: Any) -> Registry:
    return state.registry


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    """A reviewer per department, two salespeople (own scope), managers, VP, a warehouse clerk;
    all of HQ but ``cd_manager``, the Chengdu branch's sales manager (sees only its branch)."""
    roles = {
        "technical": ["review_technical"],
        "production": ["review_production"],
        "quality": ["review_quality"],
        "purchasing": ["review_purchasing"],
        "finance": ["finance"],
        "sales": ["sales"],
        "other_sales": ["sales"],
        "manager": ["sales_manager"],
        "gm": ["general_manager"],
        "vp": ["vice_president"],
        "warehouse": ["warehouse"],
    }
    found = {
        key: make_user(session, f"{key}@example.com", codes, branch=seed["hq"], department=seed["sales_dept"])
        for key, codes in roles.items()
    }
    found["cd_manager"] = make_user(session, "cd.manager@example.com", ["sales_manager"], branch=seed["cd"])
    return found


@pytest.fixture
def api(app: Flask, session: Session, people: dict[str, User]) -> dict[str, ApiCaller]:
    """Each person's API client (bearer token)."""
    return {key: ApiCaller(app.test_client(), token_for(session, user)) for key, user in people.items()}


def submitted(session: Session, registry: Registry, sales: User, **overrides: Any) -> Order:
    """An order of ``sales`` submitted: past the credit check, in department review; committed."""
    order = make_order(session, sales, **overrides)
    take_action(session, registry, sales, order, "submit")
    session.commit()
    return order


@pytest.fixture
def order(session: Session, registry: Registry, people: dict[str, User]) -> Order:
    """A non-regular order in department review: technical, production, quality, purchasing, finance."""
    found = submitted(session, registry, people["sales"], lines=NON_REGULAR)
    assert found.step == "review.department_review"
    return found


def sheet_of(api: dict[str, ApiCaller], order_id: int, who: str = "sales") -> dict[str, Any]:
    response = api[who].get(f"{BASE}/orders/{order_id}/sheet")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def verdict(api: dict[str, ApiCaller], task: dict[str, Any], **overrides: Any) -> Any:
    """Post the task's department's approval (or ``overrides``) as its reviewer."""
    code = task["department"]["code"]
    body = {"verdict": "approve", "comment": "可行", "figures": FIGURES[code], **overrides}
    return api[REVIEWER[code]].post(f"{BASE}/tasks/{task['id']}/verdict", json=body)


def answer_all(api: dict[str, ApiCaller], order_id: int) -> None:
    """Every open task of the order's sheet approved by its department (tier after tier)."""
    for _ in range(3):
        open_tasks = [t for t in sheet_of(api, order_id)["tasks"] if t["status"] == "open"]
        if not open_tasks:
            return
        for task in open_tasks:
            response = verdict(api, task)
            assert response.status_code == 201, response.get_json()


def fresh(session: Session, record: Any) -> None:
    """Reload ``record`` as the requests left it (a new read transaction sees their commits)."""
    session.commit()
    session.refresh(record)


def count(session: Session, model: Any) -> int:
    """How many rows of ``model`` are stored now."""
    session.commit()
    return session.scalar(select(func.count()).select_from(model)) or 0


def error(response: Any, status: int) -> dict[str, Any]:
    """The error body of ``response``, which must have ``status``."""
    assert response.status_code == status, (response.status_code, response.get_json())
    body = response.get_json()["error"]
    assert body["code"] and body["message"]
    return body


def assess_all(api: dict[str, ApiCaller], request: dict[str, Any]) -> None:
    """Every affected department approves the change request ``request``."""
    for assessment in request["assessments"]:
        reviewer = REVIEWER[assessment["department"]["code"]]
        response = api[reviewer].post(
            f"{BASE}/change-requests/{request['id']}/assessment", json={"verdict": "approve", "comment": "可行"}
        )
        assert response.status_code == 200, response.get_json()


def to_consolidation(session: Session, api: dict[str, ApiCaller], order: Order) -> None:
    answer_all(api, order.id)
    fresh(session, order)
    assert order.step == "review.consolidation"


def confirmed(session: Session, registry: Registry, api: dict[str, ApiCaller], people: dict[str, User]) -> Order:
    """A regular order taken through review, final approval and confirmation."""
    order = submitted(session, registry, people["sales"])
    to_consolidation(session, api, order)
    take_action(session, registry, people["sales"], order, "send_for_approval")
    session.commit()
    take_action(session, registry, people["manager"], order, "approve")
    session.commit()
    take_action(session, registry, people["manager"], order, "confirm")
    session.commit()
    assert order.status == "confirmed"
    return order


# ------------------------------------------------------------------------------ tasks


@pytest.mark.req("RV-1")
def test_my_tasks_lists_the_open_tasks_of_my_departments(api, order):
    items = api["production"].get(f"{BASE}/tasks").get_json()["items"]
    assert [(t["order"]["id"], t["department"]["code"], t["status"]) for t in items] == [
        (order.id, "production", "open")
    ]
    task = items[0]
    assert task["round"] == 1 and task["tier"] == 1 and task["verdicts"] == [] and task["due_date"]
    assert task["order"]["step"] == "review.department_review" and task["overdue"] is False
    assert api["sales"].get(f"{BASE}/tasks").get_json()["items"] == []


def test_my_tasks_filters_by_status(api, order):
    task = api["quality"].get(f"{BASE}/tasks").get_json()["items"][0]
    assert verdict(api, task).status_code == 201
    assert api["quality"].get(f"{BASE}/tasks").get_json()["items"] == []
    answered = api["quality"].get(f"{BASE}/tasks?status=answered").get_json()["items"]
    assert [(t["id"], t["verdict"]) for t in answered] == [(task["id"], "approve")]
    assert [t["id"] for t in api["quality"].get(f"{BASE}/tasks?status=all").get_json()["items"]] == [task["id"]]
    assert "status" in error(api["quality"].get(f"{BASE}/tasks?status=late"), 422)["details"]


def test_my_tasks_needs_the_read_permission(api, order):
    assert error(api["warehouse"].get(f"{BASE}/tasks"), 403)["code"] == "forbidden"
    assert error(api["warehouse"].get(f"{BASE}/orders/{order.id}/sheet"), 403)["code"] == "forbidden"


def test_the_api_needs_a_user(client, order):
    assert client.get(f"{BASE}/tasks").status_code == 401
    assert client.get(f"{BASE}/orders/{order.id}/sheet").status_code == 401


# ------------------------------------------------------------------------------ sheet


@pytest.mark.req("RV-1")
def test_the_sheet_shows_every_department_task(api, order):
    sheet = sheet_of(api, order.id)
    assert sheet["order"]["id"] == order.id and sheet["round"] == 1 and sheet["rounds"] == [1]
    assert sheet["status"] == "open" and sheet["outcome"] == ""
    assert sorted(t["department"]["code"] for t in sheet["tasks"]) == [
        "finance",
        "production",
        "purchasing",
        "quality",
        "technical",
    ]
    assert all(t["status"] == "open" for t in sheet["tasks"])
    assert sheet["negotiations"] == []


def test_costs_and_margins_in_verdicts_need_the_margins_permission(api, order):
    tasks = {t["department"]["code"]: t for t in sheet_of(api, order.id)["tasks"]}
    assert verdict(api, tasks["finance"]).status_code == 201
    assert verdict(api, tasks["purchasing"]).status_code == 201

    def figures(who: str) -> dict[str, dict[str, Any]]:
        shown = {t["department"]["code"]: t for t in sheet_of(api, order.id, who)["tasks"]}
        return {code: shown[code]["verdicts"][0]["figures"] for code in ("finance", "purchasing")}

    seen_by_sales = figures("sales")
    assert seen_by_sales["finance"] == {"payment_terms": "月结 30 天", "risk": "low"}
    assert seen_by_sales["purchasing"] == {"in_line_with_market": True}
    assert figures("finance")["finance"]["gross_margin"] == "21.50"  # finance holds review.margins.read
    assert figures("purchasing")["purchasing"]["material_cost"] == "1000.00"  # its own figures
    assert "gross_margin" not in figures("purchasing")["finance"]


def test_a_sheet_round_that_does_not_exist_answers_404(api, order, session, registry, people):
    assert error(api["sales"].get(f"{BASE}/orders/{order.id}/sheet?round=2"), 404)["code"] == "not_found"
    assert sheet_of(api, order.id)["round"] == 1
    assert api["sales"].get(f"{BASE}/orders/{order.id}/sheet?round=1").status_code == 200
    draft = make_order(session, people["sales"])
    assert error(api["sales"].get(f"{BASE}/orders/{draft.id}/sheet"), 404)["code"] == "not_found"
    assert "round" in error(api["sales"].get(f"{BASE}/orders/{order.id}/sheet?round=0"), 422)["details"]


def test_an_order_outside_the_data_scope_answers_404_everywhere(api, order):
    task = sheet_of(api, order.id)["tasks"][0]
    other = api["other_sales"]
    missing = order.id + 1000
    for path in (
        f"/orders/{order.id}/sheet",
        f"/orders/{order.id}/quotation",
        f"/orders/{order.id}/change-requests",
    ):
        body = error(other.get(BASE + path), 404)
        assert error(api["sales"].get(BASE + path.replace(str(order.id), str(missing))), 404)["code"] == body["code"]
    assert error(other.post(f"{BASE}/tasks/{task['id']}/verdict", json={"verdict": "approve"}), 404)
    assert error(other.post(f"{BASE}/orders/{order.id}/negotiation", json={"note": "x"}), 404)
    assert error(other.call("PUT", f"{BASE}/orders/{order.id}/quotation", json={"lines": []}), 404)
    assert error(other.post(f"{BASE}/orders/{order.id}/change-requests", json={"reason": "x"}), 404)
    assert error(other.post(f"{BASE}/orders/{order.id}/credit-exception", json={"reason": "x"}), 404)


# ------------------------------------------------------------------------------ verdicts


@pytest.mark.req("RV-1")
def test_a_verdict_is_recorded_with_its_figures_and_the_last_one_moves_the_order_on(api, order, session):
    tasks = {t["department"]["code"]: t for t in sheet_of(api, order.id)["tasks"]}
    response = verdict(
        api, tasks["production"], verdict="approve_with_conditions", conditions="交期顺延一周", comment="产能紧张"
    )
    assert response.status_code == 201
    task = response.get_json()
    assert (task["status"], task["verdict"]) == ("answered", "approve_with_conditions")
    given = task["verdicts"][-1]
    assert given["conditions"] == "交期顺延一周" and given["figures"]["completion_date"] == "2027-03-20"
    assert given["proposed_date"] == "2027-03-20" and given["decided_by"]["name"] == "production"
    for code in ("technical", "quality", "purchasing", "finance"):
        assert verdict(api, tasks[code]).status_code == 201
    fresh(session, order)
    assert order.step == "review.consolidation"
    assert sheet_of(api, order.id)["status"] == "complete"


def test_verdict_refusals_change_nothing(api, order, session):
    tasks = {t["department"]["code"]: t for t in sheet_of(api, order.id)["tasks"]}
    production = tasks["production"]
    path = f"{BASE}/tasks/{production['id']}/verdict"

    def verdicts() -> int:
        return count(session, ReviewVerdict)

    # Outside the department (403), bad figures / verdict / body (422), unknown task (404).
    assert error(api["technical"].post(path, json={"verdict": "approve", "figures": FIGURES["production"]}), 403)
    bad = error(api["production"].post(path, json={"verdict": "approve", "figures": {"capacity_ok": "maybe"}}), 422)
    assert bad["details"]
    assert "verdict" in error(api["production"].post(path, json={"verdict": "perhaps"}), 422)["details"]
    assert "verdict" in error(api["production"].post(path, json={"comment": "no verdict"}), 422)["details"]
    assert error(api["production"].post(path, json={"verdict": "reject", "figures": FIGURES["production"]}), 422)
    assert error(api["production"].post(path, data="verdict=approve"), 415)
    assert error(api["production"].post(f"{BASE}/tasks/999999/verdict", json={"verdict": "approve"}), 404)
    assert verdicts() == 0
    # A second verdict on an answered task (409).
    assert verdict(api, production).status_code == 201
    assert error(verdict(api, production), 409)
    assert verdicts() == 1


@pytest.mark.req("RV-3")
def test_a_reject_by_an_escalating_department_sends_the_order_to_the_president(api, order, session):
    tasks = {t["department"]["code"]: t for t in sheet_of(api, order.id)["tasks"]}
    for code in ("technical", "production", "quality", "purchasing"):
        assert verdict(api, tasks[code]).status_code == 201
    response = verdict(api, tasks["finance"], verdict="reject", comment="毛利率过低")
    assert response.status_code == 201
    assert response.get_json()["order"]["step"] == "review.president"
    fresh(session, order)
    assert order.step == "review.president"


# ------------------------------------------------------------------------------ negotiation


@pytest.mark.req("RV-4")
def test_negotiation_reopens_the_departments_a_price_change_concerns(api, order, session):
    to_consolidation(session, api, order)
    line_id = order.lines[0].id
    path = f"{BASE}/orders/{order.id}/negotiation"
    assert error(api["production"].post(path, json={"unit_prices": {str(line_id): "8000.00"}}), 403)
    assert "unit_prices" in error(api["sales"].post(path, json={"unit_prices": {"x": "1"}}), 422)["details"]
    response = api["sales"].post(path, json={"unit_prices": {str(line_id): "8000.00"}, "note": "客户同意 8000 元"})
    assert response.status_code == 201, response.get_json()
    negotiation = response.get_json()
    assert sorted(negotiation["reopened"]) == ["finance", "purchasing"]
    assert negotiation["note"] == "客户同意 8000 元" and negotiation["by"]["name"] == "sales"
    fresh(session, order)
    assert order.step == "review.department_review"
    sheet = sheet_of(api, order.id)
    assert [n["id"] for n in sheet["negotiations"]] == [negotiation["id"]]
    assert sorted(t["department"]["code"] for t in sheet["tasks"] if t["status"] == "open") == [
        "finance",
        "purchasing",
    ]
    # Not at consolidation any more: refused, nothing recorded.
    assert error(api["sales"].post(path, json={"unit_prices": {str(line_id): "7900.00"}}), 409)
    assert len(sheet_of(api, order.id)["negotiations"]) == 1


# ------------------------------------------------------------------------------ quotation


def test_the_quotation_is_read_and_saved_with_margins_for_those_who_may_see_them(api, order):
    path = f"{BASE}/orders/{order.id}/quotation"
    first = api["sales"].get(path)
    assert first.status_code == 200
    assert first.get_json()["order_id"] == order.id and first.get_json()["number"] == 1
    lines = [
        {"kind": "material", "description": "钢材", "amount": "5000.00"},
        {"kind": "labour", "description": "装配", "amount": "1000.00"},
        {"kind": "tax", "description": "附加税", "amount": "100.00"},
    ]
    saved = api["sales"].call("PUT", path, json={"lines": lines, "payment_terms": "30% 预付"})
    assert saved.status_code == 200, saved.get_json()
    by_sales = saved.get_json()
    assert [line["amount"] for line in by_sales["lines"]] == ["5000.00", "1000.00", "100.00"]
    assert by_sales["margins_visible"] is False
    assert by_sales["gross_margin"] is None and by_sales["cost"] is None and by_sales["profit_margin"] is None
    by_finance = api["finance"].get(path).get_json()
    assert by_finance["margins_visible"] is True
    assert by_finance["cost"] == "6000.00" and by_finance["payment_terms"] == "30% 预付"
    assert by_finance["gross_margin"] is not None and by_finance["profit_margin"] is not None
    by_quality = api["quality"].get(path).get_json()  # reads sheets, neither prepares quotations nor sees costs
    assert by_quality["lines"] == [] and by_quality["gross_margin"] is None


def test_quotation_refusals_change_nothing(api, order, session, people):
    path = f"{BASE}/orders/{order.id}/quotation"
    before = api["finance"].get(path).get_json()
    assert error(api["production"].call("PUT", path, json={"lines": [{"kind": "material", "amount": "1"}]}), 403)
    assert error(api["sales"].call("PUT", path, json={"lines": [{"kind": "bribe", "amount": "1"}]}), 422)
    assert error(api["sales"].call("PUT", path, json={"lines": [{"kind": "material", "amount": "-1"}]}), 422)
    assert "lines" in error(api["sales"].call("PUT", path, json={"payment_terms": "x"}), 422)["details"]
    assert api["finance"].get(path).get_json() == before
    draft = make_order(session, people["sales"])
    assert error(api["sales"].get(f"{BASE}/orders/{draft.id}/quotation"), 404)


# ------------------------------------------------------------------------------ credit exception


class BadStanding:
    """Billing's answer in a test: the customer has overdue invoices."""

    @hookimpl(optionalhook=True)
    def ordo_review_credit_standing(self, order: Order, session: Session) -> list[str]:
        return ["逾期应收款 12,000 元"]


@pytest.fixture
def bad_standing(registry: Registry):
    plugin = BadStanding()
    registry.pm.register(plugin, name="test_credit")
    yield plugin
    registry.pm.unregister(plugin)


@pytest.mark.req("RV-7")
def test_credit_exceptions_by_each_named_role_release_the_order(api, session, registry, people, bad_standing):
    order = submitted(session, registry, people["sales"])
    assert order.step == "review.credit_check"
    path = f"{BASE}/orders/{order.id}/credit-exception"
    assert error(api["sales"].post(path, json={"reason": "老客户"}), 403)
    assert error(api["vp"].post(path, json={"reason": ""}), 422)
    assert count(session, ReviewCreditException) == 0
    first = api["vp"].post(path, json={"reason": "客户承诺月底结清"})
    assert first.status_code == 200, first.get_json()
    hold = first.get_json()
    assert hold["reasons"] == ["逾期应收款 12,000 元"] and hold["outcome"] == ""
    assert [(g["role_code"], g["reason"]) for g in hold["exceptions"]] == [("vice_president", "客户承诺月底结清")]
    assert hold["roles_still_to_grant"] == ["general_manager"]
    assert hold["order"]["step"] == "review.credit_check"
    again = api["vp"].post(path, json={"reason": "again"})  # the VP's role has granted already
    assert again.status_code in (403, 409), again.get_json()
    assert count(session, ReviewCreditException) == 1
    second = api["gm"].post(path, json={"reason": "同意例外"}).get_json()
    assert second["outcome"] == "exception" and second["roles_still_to_grant"] == []
    assert second["order"]["step"] == "review.department_review"
    # No hold any more: refused.
    assert error(api["gm"].post(path, json={"reason": "once more"}), 409)


# ------------------------------------------------------------------------------ change requests


@pytest.mark.req("RV-8")
def test_a_change_request_is_filed_assessed_and_approved(api, session, registry, people):
    order = confirmed(session, registry, api, people)
    path = f"{BASE}/orders/{order.id}/change-requests"
    body = {
        "kind": "change",
        "content": {"requested_date": "2027-01-20"},
        "reason": "客户要求延期交货",
        "impact": {"review.department_review": "生产部重新排产"},
        "expected_days": 2,
        "new_delivery_date": "2027-01-20",
        "rewind_to": "review.department_review",
    }
    filed = api["sales"].post(path, json=body)
    assert filed.status_code == 201, filed.get_json()
    request = filed.get_json()
    assert filed.headers["Location"].endswith(f"{BASE}/change-requests/{request['id']}")
    assert request["number"] == 1 and request["status"] == "assessing" and request["reason"] == "客户要求延期交货"
    assert request["requested_by"]["name"] == "sales" and request["assessments"]
    assert [r["id"] for r in api["sales"].get(path).get_json()["items"]] == [request["id"]]
    item = f"{BASE}/change-requests/{request['id']}"
    assert api["manager"].get(item).get_json()["id"] == request["id"]

    assert error(api["manager"].post(f"{item}/decision", json={"approve": True, "reason": "too early"}), 409)
    assess_all(api, request)
    assessed = api["sales"].get(item).get_json()
    assert assessed["status"] == "pending_approval"
    assert all(a["verdict"] == "approve" and a["assessed_by"] for a in assessed["assessments"])

    assert error(api["sales"].post(f"{item}/decision", json={"approve": True, "reason": "ok"}), 403)
    decided = api["manager"].post(f"{item}/decision", json={"approve": True, "reason": "各部门评估可行"})
    assert decided.status_code == 200, decided.get_json()
    result = decided.get_json()
    assert result["status"] == "approved" and result["revision_id"] is not None
    assert result["decided_by"]["name"] == "manager" and result["decision_reason"] == "各部门评估可行"
    assert result["order"]["step"] == "review.department_review"
    assert error(api["manager"].post(f"{item}/decision", json={"approve": False, "reason": "again"}), 409)


@pytest.mark.req("RV-8")
def test_a_rejected_change_request_leaves_the_order_as_it_was(api, session, registry, people):
    order = confirmed(session, registry, api, people)
    filed = api["sales"].post(
        f"{BASE}/orders/{order.id}/change-requests",
        json={"kind": "change", "content": {"requested_date": "2027-02-01"}, "reason": "客户想延期"},
    )
    assert filed.status_code == 201, filed.get_json()
    item = f"{BASE}/change-requests/{filed.get_json()['id']}"
    assess_all(api, filed.get_json())
    assert "approve" in error(api["manager"].post(f"{item}/decision", json={"reason": "x"}), 422)["details"]
    response = api["manager"].post(f"{item}/decision", json={"approve": False, "reason": "产能已满"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "rejected" and response.get_json()["revision_id"] is None
    fresh(session, order)
    assert order.status == "confirmed"


def test_change_request_refusals_change_nothing(api, session, registry, people, order):
    def requests() -> int:
        return count(session, ReviewChangeRequest)

    draft = make_order(session, people["sales"])
    response = api["sales"].post(
        f"{BASE}/orders/{draft.id}/change-requests", json={"content": {"requested_date": "2027-02-01"}, "reason": "x"}
    )
    assert response.status_code in (409, 422), response.get_json()
    assert error(api["production"].post(f"{BASE}/orders/{order.id}/change-requests", json={"reason": "x"}), 403)
    assert requests() == 0
    assert error(api["sales"].get(f"{BASE}/change-requests/424242"), 404)
    assert error(api["sales"].post(f"{BASE}/change-requests/424242/assessment", json={"verdict": "approve"}), 404)
    assert error(api["manager"].post(f"{BASE}/change-requests/424242/decision", json={"approve": True}), 404)


def test_a_change_request_of_an_order_outside_the_scope_answers_404(api, session, registry, people):
    order = confirmed(session, registry, api, people)
    filed = api["sales"].post(
        f"{BASE}/orders/{order.id}/change-requests",
        json={"kind": "change", "content": {"requested_date": "2027-02-01"}, "reason": "客户想延期"},
    )
    assert filed.status_code == 201, filed.get_json()
    item = f"{BASE}/change-requests/{filed.get_json()['id']}"
    assert error(api["other_sales"].get(item), 404)["code"] == "not_found"
    assert error(api["cd_manager"].get(item), 404)
    assert error(api["cd_manager"].post(f"{item}/decision", json={"approve": True, "reason": "x"}), 404)
    assert api["sales"].get(item).get_json()["status"] == "assessing"


# ------------------------------------------------------------------------------ OpenAPI and the guide

REVIEW_ENDPOINTS = {
    ("get", "/api/v1/review/tasks"),
    ("post", "/api/v1/review/tasks/{task_id}/verdict"),
    ("get", "/api/v1/review/orders/{order_id}/sheet"),
    ("post", "/api/v1/review/orders/{order_id}/negotiation"),
    ("get", "/api/v1/review/orders/{order_id}/quotation"),
    ("put", "/api/v1/review/orders/{order_id}/quotation"),
    ("get", "/api/v1/review/orders/{order_id}/change-requests"),
    ("post", "/api/v1/review/orders/{order_id}/change-requests"),
    ("get", "/api/v1/review/change-requests/{request_id}"),
    ("post", "/api/v1/review/change-requests/{request_id}/assessment"),
    ("post", "/api/v1/review/change-requests/{request_id}/decision"),
    ("post", "/api/v1/review/orders/{order_id}/credit-exception"),
}


def test_the_openapi_document_and_the_guide_describe_every_review_endpoint(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    listed = {
        (method, path)
        for path, item in spec["paths"].items()
        if path.startswith(BASE)
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert listed == REVIEW_ENDPOINTS
    guide = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    for method, path in REVIEW_ENDPOINTS:
        operation = spec["paths"][path][method]
        assert operation["summary"] and "401" in operation["responses"], (method, path)
        if method in ("post", "put"):
            assert "requestBody" in operation, (method, path)
        assert f"`{method.upper()} {path}`" in guide, f"docs/api.md lacks {method.upper()} {path}"
