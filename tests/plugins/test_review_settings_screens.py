"""Review settings screens (RV-1, RV-2, RV-6): departments, review templates and approval limits are
created and changed by the general manager, checked with clear errors beside the fields, and every
change is audited; nobody else reaches them."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditLog, User
from core.testing import PASSWORD, csrf_token, login, make_user
from plugins.review.models import (
    ReviewApprovalLimit,
    ReviewDepartment,
    ReviewSheet,
    ReviewTemplate,
)

SETTINGS = "/review/settings"


@pytest.fixture
def ordo_plugins() -> list[str]:
    return ["review"]


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "gm": make_user(session, "gm@example.com", ["general_manager"], branch=hq),
        "zh_gm": make_user(session, "zh.gm@example.com", ["general_manager"], branch=hq, language="zh_CN"),
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
    }


def as_user(client: Any, user: User) -> Any:
    login(client, user.email, PASSWORD)
    return client


def html(response: Any) -> str:
    return response.get_data(as_text=True)


def reread(session: Session) -> None:
    session.rollback()
    session.expire_all()


def department(session: Session, code: str) -> ReviewDepartment:
    found = session.scalar(select(ReviewDepartment).where(ReviewDepartment.code == code))
    assert found is not None
    return found


def audits(session: Session, entity: str) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.entity == entity).order_by(AuditLog.id)))


def department_form(**fields: str | list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "packaging",
        "name": "Packaging",
        "name_zh": "包装部",
        "kind": "other",
        "role_code": "review_production",
        "head_user_id": "",
        "sla_days": "3",
        "position": "60",
        "reopen_on": ["quantity"],
        "active": "1",
    }
    data.update(fields)
    return data


# --- access ------------------------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_only_the_settings_manager_reaches_the_settings(client, session, people):
    as_user(client, people["sales"])
    for path in ("/departments", "/departments/new", "/departments/1", "/templates", "/templates/1", "/limits"):
        assert client.get(SETTINGS + path).status_code == 403, path
    token = csrf_token(client, "/orders")
    assert client.post(f"{SETTINGS}/limits", data={"csrf_token": token, "role_code": "sales"}).status_code == 403
    assert client.post(f"{SETTINGS}/templates/1/delete", data={"csrf_token": token}).status_code == 403
    assert 'href="/review/settings/departments"' not in html(client.get("/orders"))
    client.get("/logout")
    as_user(client, people["gm"])
    assert 'href="/review/settings/departments"' in html(client.get("/orders"))
    assert client.get(f"{SETTINGS}/departments/999999").status_code == 404
    assert client.get(f"{SETTINGS}/templates/999999").status_code == 404


@pytest.mark.parametrize("who", ["gm", "zh_gm"])
def test_the_settings_screens_render_in_english_and_chinese(client, session, people, who):
    as_user(client, people[who])
    for path in (
        "/departments",
        "/departments/new",
        "/departments/1",
        "/templates",
        "/templates/new",
        "/templates/1",
        "/limits",
    ):
        response = client.get(SETTINGS + path)
        assert response.status_code == 200, path
        assert ('<html lang="zh-CN"' in html(response)) is (who == "zh_gm"), path
    page = html(client.get(f"{SETTINGS}/departments"))
    assert re.findall(r'<tr data-department="([^"]+)"', page) == [
        "technical",
        "production",
        "quality",
        "purchasing",
        "finance",
    ]
    if who == "zh_gm":
        assert "技术部" in page


# --- departments ---------------------------------------------------------------------------------


@pytest.mark.req("RV-1")
def test_a_department_is_created_and_audited(client, session, people):
    as_user(client, people["gm"])
    token = csrf_token(client, f"{SETTINGS}/departments/new")
    response = client.post(f"{SETTINGS}/departments/new", data={"csrf_token": token, **department_form()})
    assert response.status_code == 302
    reread(session)
    created = department(session, "packaging")
    assert (created.name_zh, created.kind, created.role_code, created.sla_days) == (
        "包装部",
        "other",
        "review_production",
        3,
    )
    assert created.reopen_on == "quantity" and created.active and not created.escalating
    (entry,) = audits(session, "review_department")
    assert entry.action == "create" and entry.entity_id == created.id and entry.actor_id == people["gm"].id
    assert 'data-department="packaging"' in html(client.get(f"{SETTINGS}/departments"))


@pytest.mark.req("RV-1")
def test_a_bad_department_is_refused_beside_its_fields_and_nothing_saved(client, session, people):
    as_user(client, people["gm"])
    token = csrf_token(client, f"{SETTINGS}/departments/new")
    response = client.post(
        f"{SETTINGS}/departments/new",
        data={
            "csrf_token": token,
            **department_form(code="finance", name="", role_code="nobody", sla_days="0", kind="legal"),
        },
    )
    assert response.status_code == 422
    page = html(response)
    for message in (
        "Another department already has the code finance.",
        "Give the department&#39;s name.",
        "Choose a known role.",
        "Give a whole number from 1 to 60.",
        "Choose one of the offered kinds.",
    ):
        assert message in page, message
    assert 'value="finance"' in page  # what was typed is kept
    reread(session)
    assert len(session.scalars(select(ReviewDepartment)).all()) == 5
    assert audits(session, "review_department") == []


@pytest.mark.req("RV-3")
def test_editing_a_department_records_the_differences(client, session, people):
    quality = department(session, "quality")
    as_user(client, people["gm"])
    path = f"{SETTINGS}/departments/{quality.id}"
    page = html(client.get(path))
    assert 'value="quality"' in page and 'name="escalating" value="1" checked' in page
    data = department_form(code="quality", name="Quality", name_zh="品质部", kind="quality", role_code="review_quality")
    data.update({"sla_days": "4", "position": "30", "reopen_on": []})
    data.pop("active")  # unticked: deactivated; escalating unticked too
    response = client.post(path, data={"csrf_token": csrf_token(client, path), **data})
    assert response.status_code == 302
    reread(session)
    quality = department(session, "quality")
    assert quality.sla_days == 4 and not quality.active and not quality.escalating
    (entry,) = audits(session, "review_department")
    assert entry.action == "update"
    assert entry.changes["sla_days"] == [None, 4] and entry.changes["active"] == [True, False]
    assert "name" not in entry.changes


# --- templates -----------------------------------------------------------------------------------


def template_form(session: Session, members: list[tuple[str, int]], **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Urgent cabinets",
        "priority": "5",
        "active": "1",
        "regular": "0",
        "min_amount": "10000",
        "max_amount": "300000",
        "product_category": "cabinets",
        "urgency": "urgent",
        "branch_id": "",
        "members": [f"{department(session, code).id}-{tier}" for code, tier in members],
    }
    data.update(fields)
    return data


@pytest.mark.req("RV-2")
def test_a_two_tier_template_is_created_with_its_departments_per_tier(client, session, people):
    as_user(client, people["gm"])
    token = csrf_token(client, f"{SETTINGS}/templates/new")
    data = template_form(session, [("technical", 1), ("production", 1), ("finance", 2), ("quality", 2)], two_tier="1")
    response = client.post(f"{SETTINGS}/templates/new", data={"csrf_token": token, **data})
    assert response.status_code == 302
    reread(session)
    created = session.scalar(select(ReviewTemplate).where(ReviewTemplate.name == "Urgent cabinets"))
    assert created is not None and created.two_tier and created.regular is False
    assert (created.min_amount, created.max_amount) == (Decimal("10000.00"), Decimal("300000.00"))
    assert (created.product_category, created.urgency, created.priority) == ("cabinets", "urgent", 5)
    assert sorted((m.department.code, m.tier) for m in created.departments) == [
        ("finance", 2),
        ("production", 1),
        ("quality", 2),
        ("technical", 1),
    ]
    (entry,) = audits(session, "review_template")
    assert entry.action == "create" and sorted(entry.changes["departments"]) == [
        "finance:2",
        "production:1",
        "quality:2",
        "technical:1",
    ]
    listing = html(client.get(f"{SETTINGS}/templates"))
    assert f'data-template="{created.id}"' in listing and "Non-regular orders" in listing


@pytest.mark.req("RV-2")
def test_a_bad_template_is_refused_with_clear_errors(client, session, people):
    as_user(client, people["gm"])
    token = csrf_token(client, f"{SETTINGS}/templates/new")
    cases = [
        (
            template_form(session, [("technical", 1)], min_amount="500", max_amount="500"),
            "The maximum must be above the minimum.",
        ),
        (template_form(session, [("technical", 1)], min_amount="-1"), "An amount cannot be negative."),
        (template_form(session, [("technical", 1)], name=""), "Give the template&#39;s name."),
        (template_form(session, []), "Choose at least one department for the initial review (tier 1)."),
        (template_form(session, [("technical", 1), ("finance", 2)]), "Tick “Two-tier review”"),
        (template_form(session, [("technical", 1)], two_tier="1"), "A two-tier template needs at least one committee"),
        (template_form(session, [("technical", 1)], urgency="whenever"), "Choose one of the offered values."),
    ]
    for data, message in cases:
        response = client.post(f"{SETTINGS}/templates/new", data={"csrf_token": token, **data})
        assert response.status_code == 422, message
        assert message in html(response), message
    reread(session)
    assert len(session.scalars(select(ReviewTemplate)).all()) == 4
    assert audits(session, "review_template") == []


@pytest.mark.req("RV-5")
def test_editing_a_template_changes_its_departments_and_is_audited(client, session, people):
    regular = session.scalar(select(ReviewTemplate).where(ReviewTemplate.name == "Regular orders"))
    as_user(client, people["gm"])
    path = f"{SETTINGS}/templates/{regular.id}"
    page = html(client.get(path))
    member = f"{department(session, 'production').id}-1"
    assert f'value="{member}" id="f-member-{member}" checked' in page
    data = template_form(session, [("production", 1), ("finance", 1), ("quality", 1)], name="Regular orders")
    data.update(
        {"priority": "20", "regular": "1", "min_amount": "", "max_amount": "", "product_category": "", "urgency": ""}
    )
    assert client.post(path, data={"csrf_token": csrf_token(client, path), **data}).status_code == 302
    reread(session)
    regular = session.get(ReviewTemplate, regular.id)
    assert sorted(m.department.code for m in regular.departments) == ["finance", "production", "quality"]
    (entry,) = audits(session, "review_template")
    assert entry.action == "update"
    assert sorted(entry.changes["departments"][1]) == ["finance:1", "production:1", "quality:1"]


@pytest.mark.req("RV-2")
def test_a_template_is_deleted_only_while_no_sheet_used_it(client, session, people, seed):
    every, regular = (
        session.scalar(select(ReviewTemplate).where(ReviewTemplate.name == name))
        for name in ("Every order", "Regular orders")
    )
    from core.testing import make_order

    order = make_order(session, people["sales"], requested_date="2030-03-15")
    session.add(ReviewSheet(order_id=order.id, template_id=regular.id))
    session.commit()
    as_user(client, people["gm"])
    token = csrf_token(client, f"{SETTINGS}/templates/{every.id}")
    page = html(client.get(f"{SETTINGS}/templates/{every.id}"))
    assert "data-confirm=" in page and f"/templates/{every.id}/delete" in page
    refused = client.post(
        f"{SETTINGS}/templates/{regular.id}/delete", data={"csrf_token": token}, follow_redirects=True
    )
    assert "so it is kept; deactivate it instead" in html(refused)
    assert client.post(f"{SETTINGS}/templates/{every.id}/delete", data={"csrf_token": token}).status_code == 302
    every_id, regular_id = every.id, regular.id
    reread(session)
    assert session.get(ReviewTemplate, every_id) is None and session.get(ReviewTemplate, regular_id) is not None
    (entry,) = audits(session, "review_template")
    assert entry.action == "delete" and entry.changes["name"] == "Every order"


# --- approval limits -------------------------------------------------------------------------------


@pytest.mark.req("RV-6")
def test_approval_limits_are_set_replaced_and_removed_with_an_audit_trail(client, session, people):
    as_user(client, people["gm"])
    page = html(client.get(f"{SETTINGS}/limits"))
    assert re.findall(r'<tr data-role="([^"]+)"', page) == ["sales_manager", "general_manager"]
    assert "No limit" in page
    token = csrf_token(client, f"{SETTINGS}/limits")
    client.post(f"{SETTINGS}/limits", data={"csrf_token": token, "role_code": "vice_president", "max_amount": "500000"})
    client.post(f"{SETTINGS}/limits", data={"csrf_token": token, "role_code": "sales_manager", "max_amount": "150,000"})
    reread(session)
    assert session.get(ReviewApprovalLimit, "vice_president").max_amount == Decimal("500000.00")
    assert session.get(ReviewApprovalLimit, "sales_manager").max_amount == Decimal("150000.00")
    page = html(client.get(f"{SETTINGS}/limits"))
    assert re.findall(r'<tr data-role="([^"]+)"', page) == ["sales_manager", "vice_president", "general_manager"]
    client.post(f"{SETTINGS}/limits", data={"csrf_token": token, "role_code": "vice_president", "unlimited": "1"})
    assert client.post(f"{SETTINGS}/limits/sales_manager/delete", data={"csrf_token": token}).status_code == 302
    reread(session)
    assert session.get(ReviewApprovalLimit, "vice_president").max_amount is None
    assert session.get(ReviewApprovalLimit, "sales_manager") is None
    actions = [(e.action, e.changes["role"]) for e in audits(session, "review_approval_limit")]
    assert actions == [
        ("create", "vice_president"),
        ("update", "sales_manager"),
        ("update", "vice_president"),
        ("delete", "sales_manager"),
    ]


@pytest.mark.req("RV-6")
def test_a_bad_approval_limit_is_refused(client, session, people):
    as_user(client, people["gm"])
    token = csrf_token(client, f"{SETTINGS}/limits")
    for data, message in (
        ({"role_code": "nobody", "max_amount": "100"}, "Choose a known role."),
        ({"role_code": "sales", "max_amount": "-100"}, "An amount cannot be negative."),
        ({"role_code": "sales", "max_amount": "lots"}, "Give an amount such as 200000 or 1500.50."),
        ({"role_code": "sales", "max_amount": ""}, "or tick “No limit”."),
        ({"role_code": "sales", "max_amount": "100", "unlimited": "1"}, "not both"),
    ):
        response = client.post(f"{SETTINGS}/limits", data={"csrf_token": token, **data})
        assert response.status_code == 422 and message in html(response), message
    reread(session)
    assert session.get(ReviewApprovalLimit, "sales") is None
    assert audits(session, "review_approval_limit") == []
    assert client.post(f"{SETTINGS}/limits/sales/delete", data={"csrf_token": token}).status_code == 404
