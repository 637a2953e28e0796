"""A customer's portal users see what happened to their orders, not who among the
supplier's staff did it (CORE-4): the timeline and the API history show "Staff"."""

from __future__ import annotations

import pytest

from core.services.orders import take_action
from core.testing import PASSWORD, ApiCaller, login, make_order, make_user, token_for

pytestmark = pytest.mark.req("CORE-4")


def test_portal_users_see_staff_not_names_in_an_orders_history(app, client, session, state, seed):
    buyer = make_user(session, "buyer@example.com", ["customer"], customer=seed["local"])
    buyer.name = "张伟"
    order = make_order(session, buyer, channel="portal")  # the customer's own order, entered in the portal
    take_action(session, state.registry, buyer, order, "submit")
    session.commit()
    manager = make_user(session, "boss@example.com", ["sales_manager"], branch=seed["hq"])
    manager.name = "刘经理"
    order.branch_id = seed["hq"].id
    take_action(session, state.registry, manager, order, "confirm")
    session.commit()

    history = ApiCaller(client, token_for(session, buyer)).get(f"/api/v1/orders/{order.id}/history").get_json()
    actors = [item["actor"] for item in history["items"]]
    assert actors == [{"id": buyer.id, "name": "张伟"}, {"id": None, "name": "staff"}]

    login(client, "buyer@example.com", PASSWORD)
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "刘经理" not in page and "张伟" in page

    staff_view = ApiCaller(app.test_client(), token_for(session, manager))
    seen = staff_view.get(f"/api/v1/orders/{order.id}/history").get_json()["items"][1]["actor"]
    assert seen == {"id": manager.id, "name": "刘经理"}
