"""The core workflow: draft → submitted → confirmed → completed, cancel, reject, guards."""

import pytest
from sqlalchemy import select

from core.models import AuditLog, OrderTransition
from core.services import ServiceError
from core.services.orders import take_action
from core.testing import make_order

pytestmark = pytest.mark.req("CORE-2")


def test_core_flow_records_every_transition(session, state, admin, seed):
    order = make_order(session, admin)
    assert (order.step, order.status) == ("draft", "draft")
    for action, step in (("submit", "submitted"), ("confirm", "confirmed"), ("complete", "completed")):
        take_action(session, state.registry, admin, order, action)
        session.commit()
        assert order.step == step
        assert order.status == step
    history = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()
    assert [(t.from_step, t.to_step, t.action, t.actor_id) for t in history] == [
        ("draft", "submitted", "submit", admin.id),
        ("submitted", "confirmed", "confirm", admin.id),
        ("confirmed", "completed", "complete", admin.id),
    ]
    audited = session.scalars(
        select(AuditLog.action).where(AuditLog.entity == "order", AuditLog.entity_id == order.id)
    ).all()
    assert audited == ["create", "transition:submit", "transition:confirm", "transition:complete"]


@pytest.mark.req("RV-9")
def test_cancel_needs_and_keeps_a_reason(session, state, admin, seed):
    order = make_order(session, admin)
    with pytest.raises(ServiceError) as refused:
        take_action(session, state.registry, admin, order, "cancel")
    assert refused.value.code == "reason_required"
    take_action(session, state.registry, admin, order, "cancel", reason="customer withdrew")
    session.commit()
    assert order.status == "cancelled"
    last = session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all()[-1]
    assert last.reason == "customer withdrew"


def test_invalid_transitions_are_refused_and_change_nothing(session, state, admin, seed):
    order = make_order(session, admin)
    with pytest.raises(ServiceError) as refused:
        take_action(session, state.registry, admin, order, "complete")
    assert refused.value.code == "action_not_available"
    assert refused.value.status == 409
    with pytest.raises(ServiceError) as unknown:
        take_action(session, state.registry, admin, order, "teleport")
    assert unknown.value.status == 404
    session.rollback()
    assert order.step == "draft"
    assert session.scalars(select(OrderTransition).where(OrderTransition.order_id == order.id)).all() == []


def test_guard_refuses_submitting_an_order_whose_product_was_deactivated(session, state, admin, seed):
    order = make_order(session, admin)
    seed["products"][0].active = False
    session.commit()
    with pytest.raises(ServiceError) as refused:
        take_action(session, state.registry, admin, order, "submit")
    assert refused.value.code == "transition_refused"
    assert any("P-100" in r for r in refused.value.details["reasons"])
    session.rollback()
    session.refresh(order)
    assert order.step == "draft"


def test_order_numbers_follow_the_company_sequence(session, admin, seed):
    first = make_order(session, admin)
    second = make_order(session, admin, reference="PO-2")
    year = first.created_at.year
    assert first.number == f"SO{year}-000001"
    assert second.number == f"SO{year}-000002"


def test_totals_are_decimal_and_computed_server_side(session, admin, seed):
    order = make_order(session, admin)
    # 2 × 1150.00 + 100 × 12.50 = 3550.00 untaxed, 13 % VAT = 461.50
    assert str(order.untaxed_amount) == "3550.00"
    assert str(order.tax_amount) == "461.50"
    assert str(order.total) == "4011.50"


def test_an_order_too_large_for_its_amount_columns_is_refused(session, admin, seed):
    from core.services import ServiceError

    with pytest.raises(ServiceError) as refused:
        make_order(session, admin, lines=[{"product": "P-100", "quantity": "9999999999", "unit_price": "99999999"}])
    assert refused.value.status == 422
    assert "too large" in str(refused.value.details["lines"])


@pytest.mark.req("CORE-5")
def test_a_lines_only_edit_moves_the_version_so_a_stale_copy_is_refused(session, admin, seed):
    from core.services import Conflict
    from core.services.orders import update_order

    order = make_order(session, admin)
    first = order.version
    line = {"product": "P-100", "quantity": "2", "unit_price": "1150.00", "description": "blue housing"}
    rest = {"product": "P-300", "quantity": "100"}
    update_order(session, admin, order, {"version": first, "lines": [line, rest]})
    session.commit()
    assert order.version > first
    with pytest.raises(Conflict):
        update_order(session, admin, order, {"version": first, "lines": [rest]})


@pytest.mark.req("CORE-6")
def test_the_audit_log_keeps_old_and_new_ship_to_and_lines(session, admin, seed):
    from core.services.orders import update_order

    order = make_order(session, admin)
    update_order(
        session,
        admin,
        order,
        {"version": order.version, "ship_to": {"city": "成都市"}, "lines": [{"product": "P-200", "quantity": "1"}]},
    )
    session.commit()
    entry = session.scalars(select(AuditLog).where(AuditLog.entity_id == order.id, AuditLog.action == "update")).one()
    assert entry.changes["ship_to_city"] == ["重庆市", "成都市"]
    old, new = entry.changes["lines"]
    assert [line["product"] for line in old] == ["P-100", "P-300"]
    assert new == [{"product": "P-200", "description": "", "quantity": "1", "unit_price": "8800.00", "discount": "0"}]


@pytest.mark.req("IN-2")
def test_an_order_entered_by_a_clerk_belongs_to_the_customers_salesperson_and_branch(session, admin, seed):
    from core.testing import make_user

    salesperson = make_user(session, "s@example.com", ["sales"], branch=seed["cd"])
    clerk = make_user(session, "clerk@example.com", ["order_clerk"], branch=seed["hq"])
    seed["remote"].owner_id = salesperson.id
    seed["remote"].branch_id = seed["cd"].id
    session.commit()
    order = make_order(session, clerk, customer="C002")
    assert (order.owner_id, order.branch_id, order.created_by_id) == (salesperson.id, seed["cd"].id, clerk.id)
    # …so the salesperson, whose scope is their own orders, sees it.
    from core.services.orders import get_order

    assert get_order(session, salesperson, order.id) is order


@pytest.mark.req("IN-1")
def test_a_portal_user_orders_only_by_the_portal_channel(session, admin, seed):
    from core.services import ServiceError
    from core.testing import make_user

    portal = make_user(session, "p@example.com", ["customer"], customer=seed["local"])
    with pytest.raises(ServiceError) as refused:
        make_order(session, portal, channel="phone")
    assert "channel" in refused.value.details
    assert make_order(session, portal, channel="portal").owner_id is None


@pytest.mark.req("CORE-6")
def test_audit_entries_carry_the_reason_and_the_request_id(make_app, client, session, admin, seed):
    from core.testing import token_for

    order = make_order(session, admin)
    token = token_for(session, admin)
    # With no proxy configured, the client's own X-Request-Id is not trusted: one is made.
    response = client.post(
        f"/api/v1/orders/{order.id}/actions/cancel",
        json={"reason": "duplicate of PO-7"},
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "req-1234abcd"},
    )
    assert response.status_code == 200, response.get_json()
    generated = response.headers["X-Request-Id"]
    assert generated != "req-1234abcd" and len(generated) == 32
    session.rollback()
    entry = session.scalars(select(AuditLog).where(AuditLog.action == "transition:cancel")).one()
    assert (entry.reason, entry.request_id) == ("duplicate of PO-7", generated)
    # Behind a configured proxy, the proxy's id is kept when it is sane (the id audit
    # entries get is the one answered) …
    proxied_app = make_app((), PROXY_FIX=1)
    with proxied_app.extensions["ordo"].sessions() as other_db:
        proxied_token = token_for(other_db, other_db.get(type(admin), admin.id))
    proxied = proxied_app.test_client()
    headers = {"Authorization": f"Bearer {proxied_token}", "X-Request-Id": "req-1234abcd"}
    assert proxied.get("/api/v1/orders", headers=headers).headers["X-Request-Id"] == "req-1234abcd"
    # … and a made-up id that is not a sane token is replaced by one of our own.
    other = proxied.get("/api/v1/orders", headers=headers | {"X-Request-Id": "<script>"})
    assert other.headers["X-Request-Id"] != "<script>" and len(other.headers["X-Request-Id"]) == 32
