"""The audit trail (CORE-6): the audit screen and API with their filters, each order's own
trail on its page, the data scope applied to entries about orders, and a log that no
path in the application can rewrite.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from core.clock import company_now
from core.models import AuditLog, Role
from core.services.orders import update_order
from core.testing import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, login, make_order, make_user, token_for

pytestmark = pytest.mark.req("CORE-6")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def trail(session, admin, seed):
    """Two orders by two people, one of them changed with a reason-bearing cancellation."""
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    chengdu = make_user(session, "cd@example.com", ["sales"], branch=seed["cd"])
    first = make_order(session, clerk)
    second = make_order(session, chengdu, customer="C002")
    update_order(session, admin, first, {"version": first.version, "reference": "PO-NEW"})
    session.commit()
    return {"clerk": clerk, "chengdu": chengdu, "first": first, "second": second}


def entries_shown(html: str) -> list[str]:
    return re.findall(r'data-audit-entry="\d+" data-action="([^"]+)"', html)


def test_the_audit_screen_filters_by_who_what_when_and_order(client, session, admin, trail):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    client.get("/lang/en")
    page = client.get("/admin/audit")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Audit log" in html and set(entries_shown(html)) >= {"create", "update", "login"}
    by_clerk = client.get(f"/admin/audit?actor={trail['clerk'].id}").get_data(as_text=True)
    assert entries_shown(by_clerk) == ["create"]
    updates = client.get("/admin/audit?entity=order&action=update").get_data(as_text=True)
    assert entries_shown(updates) == ["update"]
    # Before → after of the changed field, and who did it.
    assert "PO-2026-001" in updates and "PO-NEW" in updates and "<del" in updates
    one_order = client.get(f"/admin/audit?order={trail['second'].number}").get_data(as_text=True)
    assert entries_shown(one_order) == ["create"] and trail["second"].number in one_order
    today = company_now().date()
    assert len(entries_shown(client.get(f"/admin/audit?date_from={today}&date_to={today}").get_data(as_text=True))) >= 4
    tomorrow = today + dt.timedelta(days=1)
    assert entries_shown(client.get(f"/admin/audit?date_from={tomorrow}").get_data(as_text=True)) == []
    # A malformed date is ignored with a warning, not a 500.
    assert client.get("/admin/audit?date_from=yesterday").status_code == 200


def test_the_audit_screen_and_api_need_the_audit_permission(client, session, trail):
    login(client, "clerk@example.com", PASSWORD)
    assert client.get("/admin/audit").status_code == 403
    token = token_for(session, trail["clerk"])
    refused = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    assert client.get("/api/v1/audit").status_code in (401, 403)


def test_the_api_lists_entries_with_the_same_filters_and_pages_by_cursor(client, session, admin, trail):
    headers = {"Authorization": f"Bearer {token_for(session, admin)}", "X-Request-Id": "audit-req-0001"}
    first = trail["first"]
    cancelled = client.post(f"/api/v1/orders/{first.id}/actions/cancel", json={"reason": "dup"}, headers=headers)
    assert cancelled.status_code == 200
    body = client.get(f"/api/v1/audit?order={first.number}", headers=headers).get_json()
    actions = [item["action"] for item in body["items"]]
    assert actions == ["transition:cancel", "update", "create"]  # newest first
    cancel = body["items"][0]
    assert cancel["reason"] == "dup" and cancel["request_id"] == cancelled.headers["X-Request-Id"]
    assert cancel["actor"] == {"id": admin.id, "name": admin.name} and cancel["entity_id"] == first.id
    update = body["items"][1]
    assert update["changes"] == {"reference": ["PO-2026-001", "PO-NEW"]}
    by_clerk = client.get(f"/api/v1/audit?actor={trail['clerk'].id}", headers=headers).get_json()
    assert [i["action"] for i in by_clerk["items"]] == ["create"]
    # Paging: one at a time, every entry exactly once.
    seen, cursor = [], None
    while True:
        query = "&cursor=" + cursor if cursor else ""
        page = client.get(f"/api/v1/audit?entity=order&limit=1{query}", headers=headers).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    total = session.scalar(select(func.count(AuditLog.id)).where(AuditLog.entity == "order"))
    assert len(seen) == len(set(seen)) == total
    bad = client.get("/api/v1/audit?cursor=bm9wZQ", headers=headers)
    assert bad.status_code == 422
    assert client.get("/api/v1/audit?date_from=2026-01-02&date_to=2026-01-01", headers=headers).status_code == 422


def test_entries_about_orders_follow_the_readers_data_scope(client, session, admin, seed, trail):
    """An auditor limited to a branch reads the trail of that branch's orders only."""
    role = Role(code="branch_auditor", name="Branch auditor", data_scope="branch")
    session.add(role)
    session.flush()
    from core.models import RolePermission

    role.permissions += [RolePermission(code="audit.read"), RolePermission(code="orders.read")]
    session.commit()
    reader = make_user(session, "ba@example.com", ["branch_auditor"], branch=seed["hq"])
    headers = {"Authorization": f"Bearer {token_for(session, reader)}"}
    items = client.get("/api/v1/audit?entity=order", headers=headers).get_json()["items"]
    assert {i["entity_id"] for i in items} == {trail["first"].id}
    hidden = client.get(f"/api/v1/audit?order={trail['second'].number}", headers=headers).get_json()
    assert hidden["items"] == []
    login(client, "ba@example.com", PASSWORD)
    html = client.get("/admin/audit").get_data(as_text=True)
    assert trail["first"].number in html and trail["second"].number not in html
    # The "who" choices name only people whose entries this reader may see.
    assert "clerk@example.com" in html and "cd@example.com" not in html


def test_the_order_page_shows_its_own_trail_to_audit_readers_only(client, session, admin, seed, trail):
    first = trail["first"]
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    html = client.get(f"/orders/{first.id}").get_data(as_text=True)
    assert 'id="audit-trail"' in html
    assert entries_shown(html) == ["create", "update"]
    assert "PO-NEW" in html
    client.post("/logout", data={"csrf_token": re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)})
    login(client, "clerk@example.com", PASSWORD)
    page = client.get(f"/orders/{first.id}")
    assert page.status_code == 200 and 'id="audit-trail"' not in page.get_data(as_text=True)


def test_the_menu_offers_the_audit_log_to_its_readers(client, session, admin, trail):
    login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert 'href="/admin/audit"' in client.get("/orders").get_data(as_text=True)
    client2 = client.application.test_client()
    login(client2, "clerk@example.com", PASSWORD)
    assert 'href="/admin/audit"' not in client2.get("/orders").get_data(as_text=True)


# --- append-only ---------------------------------------------------------------------------


def test_the_orm_refuses_to_change_or_delete_an_entry(session, trail):
    entry = session.scalars(select(AuditLog)).first()
    entry.reason = "rewritten"
    with pytest.raises(PermissionError):
        session.flush()
    session.rollback()
    entry = session.scalars(select(AuditLog)).first()
    session.delete(entry)
    with pytest.raises(PermissionError):
        session.flush()
    session.rollback()


SNAPSHOT = text("SELECT id, reason, CAST(changes AS TEXT) FROM audit_log ORDER BY id")


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log", "UPDATE audit_log SET changes = '{}' WHERE id = 1"],
)
def test_raw_sql_cannot_rewrite_the_log_either(state, trail, statement):
    before = None
    with state.engine.connect() as conn:
        before = conn.execute(SNAPSHOT).all()
        with pytest.raises(DatabaseError, match="append-only"):
            conn.execute(text(statement))
        conn.rollback()
        assert conn.execute(SNAPSHOT).all() == before


def test_no_endpoint_changes_the_log(app):
    for rule in app.url_map.iter_rules():
        if "audit" in rule.rule:
            assert (rule.methods or set()) <= {"GET", "HEAD", "OPTIONS"}, rule.rule


def test_no_application_code_updates_or_deletes_audit_rows():
    """Nothing in core, the built-in plugins or the example plugin writes UPDATE/DELETE on the log."""
    pattern = re.compile(r"(update|delete)\(\s*AuditLog|(UPDATE|DELETE FROM)\s+audit_log", re.I)
    offenders = []
    for folder in ("core", "plugins", "tests/thirdparty"):
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # the migrations install the triggers that refuse exactly this
            if pattern.search(path.read_text(encoding="utf-8")):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


@pytest.mark.req("CORE-6")
def test_a_plugins_record_joins_its_orders_trail_and_scope(make_app):
    """An inspection report's audit entry names its order: it shows in that order's trail
    and is hidden from readers who may not see the order."""
    from ordo_inspection.services import record_report
    from sqlalchemy import select

    from core.models import AuditLog
    from core.testing import make_order, seed_master_data

    app = make_app(["inspection"])
    state = app.extensions["ordo"]
    with state.sessions() as session:
        from core.models import User
        from core.services.audit import order_trail
        from core.services.orders import take_action

        admin = session.scalar(select(User).where(User.email == "admin@example.com"))
        seed_master_data(session)
        order = make_order(session, admin)
        for action in ("submit", "confirm"):
            take_action(session, state.registry, admin, order, action)
        record_report(session, admin, order, passed=True, note="")
        session.commit()
        entry = session.scalars(select(AuditLog).where(AuditLog.entity == "inspection_report")).one()
        assert entry.order_id == order.id
        assert entry in order_trail(session, admin, order.id)

        from core.models import Role, RolePermission
        from core.services.audit import AuditFilters, audit_entries
        from core.testing import make_user

        own_reader = Role(code="own_reader", name="Own reader", data_scope="own")
        own_reader.permissions = [RolePermission(code="orders.read"), RolePermission(code="audit.read")]
        session.add(own_reader)
        session.commit()
        outsider = make_user(session, "outsider@example.com", ["own_reader"])
        seen = session.scalars(audit_entries(outsider, AuditFilters(entity="inspection_report"))).all()
        assert seen == []  # the report's order is not the outsider's
