"""Stock screens (LG-2): stock list and export, moves ledger, receipt and adjustment forms,
warehouses and locations, product facts, count sheets, replenishment; permissions."""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from logistics_helpers import confirm, location, make_warehouse, receive
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import User
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.logistics import stock
from plugins.logistics.models import (
    LogisticsCount,
    LogisticsLocation,
    LogisticsMove,
    LogisticsProduct,
    LogisticsWarehouse,
)


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def wh(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    return make_warehouse(session, seed["hq"].company_id)


@pytest.fixture
def keeper(session: Session, seed: dict[str, Any]) -> User:
    return make_user(session, "keeper@example.com", ["warehouse"], branch=seed["hq"])


def _as(client: FlaskClient, user: User) -> None:
    login(client, user.email, PASSWORD)


@pytest.mark.req("LG-2")
def test_the_warehouse_role_sees_stock_and_a_salesperson_may_not_receive(
    client: FlaskClient, session: Session, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "7")
    _as(client, keeper)
    page = client.get("/logistics/stock")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-sku="P-100"' in html and 'data-on-hand="7"' in html
    assert client.get("/logistics/stock/receive").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/logistics/stock")})

    seller = make_user(session, "seller@example.com", ["sales"])
    _as(client, seller)
    assert client.get("/logistics/stock").status_code == 200  # sales may read stock
    assert client.get("/logistics/stock/receive").status_code == 403
    token = csrf_token(client, "/logistics/stock")
    refused = client.post(
        "/logistics/stock/receive",
        data={"csrf_token": token, "product": "P-100", "location_id": location(wh, "A-01").id, "quantity": "5"},
    )
    assert refused.status_code == 403
    assert stock.free_quantity(session, seed["products"][0].id) == Decimal("7.000")


@pytest.mark.req("LG-2")
def test_receipt_form_books_the_goods_and_serves_a_waiting_order(
    client: FlaskClient,
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    wh: LogisticsWarehouse,
    keeper: User,
) -> None:
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, order)
    assert stock.backorder_quantities(session, order)
    _as(client, keeper)
    token = csrf_token(client, "/logistics/stock/receive")
    bad = client.post(
        "/logistics/stock/receive",
        data={"csrf_token": token, "product": "NOPE", "location_id": location(wh, "A-01").id, "quantity": "3"},
    )
    assert bad.status_code == 422 and "There is no product with this SKU." in bad.get_data(as_text=True)
    zero = client.post(
        "/logistics/stock/receive",
        data={"csrf_token": token, "product": "P-100", "location_id": location(wh, "A-01").id, "quantity": "0"},
    )
    assert zero.status_code == 422 and "must be above zero" in zero.get_data(as_text=True)
    done = client.post(
        "/logistics/stock/receive",
        data={
            "csrf_token": token,
            "product": "P-100",
            "location_id": location(wh, "A-01").id,
            "quantity": "5",
            "reference": "DN-77",
        },
        follow_redirects=True,
    )
    assert done.status_code == 200 and "Received 5 × P-100." in done.get_data(as_text=True)
    session.rollback()  # end the read snapshot: see what the requests committed
    session.expire_all()
    assert stock.backorder_quantities(session, order) == {}
    assert stock.free_quantity(session, seed["products"][0].id) == Decimal("2.000")
    moves = client.get("/logistics/moves?kind=receipt").get_data(as_text=True)
    assert "DN-77" in moves and 'data-kind="receipt"' in moves


@pytest.mark.req("LG-2")
def test_adjustment_form_needs_a_reason_and_cannot_take_reserved_units(
    client: FlaskClient,
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    wh: LogisticsWarehouse,
    keeper: User,
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(wh, "A-01"), "4")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, order)
    _as(client, keeper)
    token = csrf_token(client, "/logistics/stock/adjust")
    loc = location(wh, "A-01").id
    no_reason = client.post(
        "/logistics/stock/adjust", data={"csrf_token": token, "product": "P-100", "location_id": loc, "quantity": "-1"}
    )
    assert no_reason.status_code == 422 and "Give the reason for the adjustment." in no_reason.get_data(as_text=True)
    too_many = client.post(
        "/logistics/stock/adjust",
        data={"csrf_token": token, "product": "P-100", "location_id": loc, "quantity": "-2", "reason": "broken"},
    )
    assert too_many.status_code == 409 and "Only 1 are free" in too_many.get_data(as_text=True).replace(".000", "")
    ok = client.post(
        "/logistics/stock/adjust",
        data={"csrf_token": token, "product": "P-100", "location_id": loc, "quantity": "-1", "reason": "broken"},
    )
    assert ok.status_code == 302
    session.rollback()  # end the read snapshot: see what the requests committed
    session.expire_all()
    assert stock.on_hand_at(session, p100.id, loc) == Decimal("3.000")
    assert stock.reserved_quantities(session, order.id) == {order.lines[0].id: Decimal("3.000")}


@pytest.mark.req("LG-2")
def test_stock_export_csv_and_xlsx(
    client: FlaskClient, session: Session, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "7")
    receive(session, admin, seed["products"][2], location(wh, "B-01"), "120.5")
    _as(client, keeper)
    csv = client.get("/logistics/stock?format=csv&q=P-300")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    text = csv.get_data(as_text=True)
    assert "P-300" in text and "120.500" in text and "P-100" not in text
    xlsx = client.get("/logistics/stock?format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "SKU" and {r[0] for r in rows[1:]} == {"P-100", "P-300"}
    moves = client.get("/logistics/moves?format=csv")
    assert moves.status_code == 200 and "P-300" in moves.get_data(as_text=True)


@pytest.mark.req("LG-2")
def test_moves_ledger_links_the_order_and_filters_by_order_number(
    client: FlaskClient,
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    wh: LogisticsWarehouse,
    keeper: User,
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(wh, "A-01"), "4")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "1"}])
    order.branch_id = keeper.branch_id  # an order of the keeper's branch: its references are shown
    confirm(session, state.registry, admin, order)
    stock.post_move(
        session,
        admin,
        kind="return",
        product_id=p100.id,
        location_id=location(wh, "A-01").id,
        quantity=Decimal("1"),
        order_id=order.id,
    )
    session.commit()
    _as(client, keeper)
    html = client.get(f"/logistics/moves?order={order.number}").get_data(as_text=True)
    assert f'href="/orders/{order.id}"' in html and 'data-kind="return"' in html
    assert 'data-kind="receipt"' not in html
    assert (
        client.get("/logistics/moves?date_from=2000-01-01&date_to=2000-01-02")
        .get_data(as_text=True)
        .count("data-kind=")
        == 0
    )


@pytest.mark.req("LG-2")
def test_warehouse_and_location_screens(
    client: FlaskClient, session: Session, seed: dict[str, Any], keeper: User
) -> None:
    _as(client, keeper)
    token = csrf_token(client, "/logistics/warehouses/new")
    made = client.post(
        "/logistics/warehouses/new",
        data={"csrf_token": token, "code": "cq1", "name": "重庆仓", "province": "重庆市", "active": "y"},
    )
    assert made.status_code == 302
    wh = session.scalar(select(LogisticsWarehouse).where(LogisticsWarehouse.code == "CQ1"))
    assert wh is not None and wh.is_default  # the first warehouse is the default
    twice = client.post("/logistics/warehouses/new", data={"csrf_token": token, "code": "CQ1", "name": "again"})
    assert twice.status_code == 409 and "already has the code CQ1" in twice.get_data(as_text=True)
    loc = client.post(
        f"/logistics/warehouses/{wh.id}/locations/new",
        data={"csrf_token": token, "code": "QC-1", "sequence": "90", "blocked": "y", "active": "y"},
    )
    assert loc.status_code == 302
    page = client.get(f"/logistics/warehouses/{wh.id}").get_data(as_text=True)
    assert 'data-code="QC-1" data-blocked="1"' in page
    assert client.get("/logistics/warehouses").status_code == 200
    assert client.get("/logistics/product-facts").status_code == 200
    bad = client.post(
        f"/logistics/product-facts/{seed['products'][0].id}",
        data={"csrf_token": token, "unit_weight": "-1", "unit_volume": "0.2", "reorder_level": "5"},
        follow_redirects=True,
    )
    assert "Enter a number of at least zero." in bad.get_data(as_text=True)
    session.rollback()
    assert session.get(LogisticsProduct, seed["products"][0].id) is None
    client.post(
        f"/logistics/product-facts/{seed['products'][0].id}",
        data={"csrf_token": token, "unit_weight": "12.5", "unit_volume": "0.02", "reorder_level": "5"},
    )
    session.rollback()  # end the read snapshot: see what the requests committed
    session.expire_all()
    facts = session.get(LogisticsProduct, seed["products"][0].id)
    assert facts is not None and facts.unit_weight == Decimal("12.5") and facts.reorder_level == Decimal("5")


@pytest.mark.req("LG-2")
def test_count_sheet_screens_start_enter_post(
    client: FlaskClient, session: Session, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(wh, "A-01"), "10")
    _as(client, keeper)
    token = csrf_token(client, "/logistics/counts/new")
    started = client.post("/logistics/counts/new", data={"csrf_token": token, "warehouse_id": wh.id})
    assert started.status_code == 302
    count = session.scalar(select(LogisticsCount))
    assert count is not None and len(count.lines) == 1
    line = count.lines[0]
    sheet = client.get(f"/logistics/counts/{count.id}").get_data(as_text=True)
    assert f'name="line-{line.id}"' in sheet
    assert client.get(f"/logistics/counts/{count.id}/print").status_code == 200
    client.post(f"/logistics/counts/{count.id}/enter", data={"csrf_token": token, f"line-{line.id}": "8"})
    posted = client.post(f"/logistics/counts/{count.id}/post", data={"csrf_token": token}, follow_redirects=True)
    assert "1 differences booked" in posted.get_data(as_text=True)
    again = client.post(f"/logistics/counts/{count.id}/post", data={"csrf_token": token}, follow_redirects=True)
    assert "is already posted" in again.get_data(as_text=True)
    session.rollback()  # end the read snapshot: see what the requests committed
    session.expire_all()
    assert stock.on_hand_at(session, p100.id, location(wh, "A-01").id) == Decimal("8.000")
    assert session.scalar(select(LogisticsMove).where(LogisticsMove.kind == "count")) is not None
    assert client.get("/logistics/counts").status_code == 200


@pytest.mark.req("LG-2")
def test_replenishment_screen_and_its_reserve_button(
    client: FlaskClient,
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    wh: LogisticsWarehouse,
    keeper: User,
) -> None:
    p100 = seed["products"][0]
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, order)
    _as(client, keeper)
    html = client.get("/logistics/replenishment").get_data(as_text=True)
    assert 'data-sku="P-100" data-suggested="3"' in html and order.number in html
    # Stock appearing without a receipt (here a bare move) waits until the button is pressed.
    stock.post_move(
        session, admin, kind="adjustment", product_id=p100.id, location_id=location(wh, "A-01").id, quantity=Decimal(3)
    )
    session.commit()
    token = csrf_token(client, "/logistics/replenishment")
    done = client.post("/logistics/replenishment/reserve", data={"csrf_token": token}, follow_redirects=True)
    assert f"Stock was reserved for orders {order.number}." in done.get_data(as_text=True)
    session.rollback()  # end the read snapshot: see what the requests committed
    session.expire_all()
    assert stock.backorder_quantities(session, order) == {}
    seller = make_user(session, "seller2@example.com", ["sales"])
    client.post("/logout", data={"csrf_token": token})
    _as(client, seller)
    assert client.get("/logistics/replenishment").status_code == 403
    assert (
        client.post("/logistics/replenishment/reserve", data={"csrf_token": csrf_token(client, "/orders")}).status_code
        == 403
    )


def test_locations_listed_in_the_receipt_form_are_active_ones(
    client: FlaskClient, session: Session, wh: LogisticsWarehouse, keeper: User
) -> None:
    retired = LogisticsLocation(warehouse_id=wh.id, code="OLD-9", sequence=9, active=False)
    session.add(retired)
    session.commit()
    _as(client, keeper)
    html = client.get("/logistics/stock/receive").get_data(as_text=True)
    assert "WH1 · A-01" in html and "OLD-9" not in html


@pytest.mark.req("CORE-4")
def test_the_ledger_keeps_quantities_but_names_no_order_outside_the_readers_scope(
    client: FlaskClient, session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse
) -> None:
    """Stock on hand must add up for every reader, so a move of an order the reader may not
    see stays in the ledger — without its order, shipment, return, reference or note, on
    the screen, in the export and in the API; filtering by that order finds nothing."""
    from core.testing import ApiCaller, token_for

    p100 = seed["products"][0]
    receive(session, admin, p100, location(wh, "A-01"), "4")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "1"}])
    confirm(session, state.registry, admin, order)
    stock.post_move(
        session,
        admin,
        kind="return",
        product_id=p100.id,
        location_id=location(wh, "A-01").id,
        quantity=Decimal("1"),
        order_id=order.id,
        reference=order.number,
        note=f"back from {order.number}",
    )
    session.commit()
    outsider = make_user(session, "cd-sales@example.com", ["sales"], branch=seed["cd"])
    api = ApiCaller(client.application.test_client(), token_for(session, outsider))
    _as(client, outsider)

    html = client.get("/logistics/moves").get_data(as_text=True)
    assert 'data-kind="return"' in html and order.number not in html and f"/orders/{order.id}" not in html
    exported = client.get("/logistics/moves?format=csv").get_data(as_text=True)
    assert "P-100" in exported and order.number not in exported
    assert 'data-kind="return"' not in client.get(f"/logistics/moves?order={order.number}").get_data(as_text=True)
    answer = api.get("/api/v1/logistics/moves")
    assert answer.status_code == 200, answer.get_json()
    items = answer.get_json()["items"]
    returned = [i for i in items if i["kind"] == "return"]
    assert returned and returned[0]["quantity"] and returned[0]["order_id"] is None
    assert returned[0]["reference"] == "" and returned[0]["note"] == ""
    assert api.get(f"/api/v1/logistics/moves?order_id={order.id}").get_json()["items"] == []

    admin_api = ApiCaller(client.application.test_client(), token_for(session, admin))
    seen = [i for i in admin_api.get("/api/v1/logistics/moves").get_json()["items"] if i["kind"] == "return"]
    assert seen[0]["order_id"] == order.id and seen[0]["reference"] == order.number
