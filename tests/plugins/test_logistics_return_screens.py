"""Return screens (LG-9): request, review, approval, receipt and inspection through the browser forms;
the returns list; the PDF form; the customer's portal request for its own orders only."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Order, User
from core.testing import PASSWORD, csrf_token, login, make_order, make_user
from plugins.logistics import stock
from plugins.logistics.models import (
    LogisticsLocation,
    LogisticsMove,
    LogisticsReservation,
    LogisticsReturn,
    LogisticsShipment,
    LogisticsShipmentLine,
    LogisticsWarehouse,
)

Q = Decimal


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def warehouse(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    return make_warehouse(session, seed["hq"].company_id)


@pytest.fixture
def people(session: Session, seed: dict[str, Any]) -> dict[str, User]:
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "rm": make_user(session, "rm@example.com", ["regional_manager"], branch=hq),
        "md": make_user(session, "md@example.com", ["marketing_director"], branch=hq),
        "wh": make_user(session, "wh@example.com", ["warehouse"], branch=hq),
        "qc": make_user(session, "qc@example.com", ["quality_inspector"], branch=hq),
        "buyer": make_user(session, "buyer@c001.example.com", ["customer"], customer=seed["local"]),
    }


def ship_all(session: Session, actor: User, order: Order) -> None:
    """Ship every reservation of ``order`` in one shipped shipment."""
    reservations = list(session.scalars(select(LogisticsReservation).where(LogisticsReservation.order_id == order.id)))
    shipment = LogisticsShipment(
        number=f"SHP-T-{order.id}",
        order_id=order.id,
        warehouse_id=session.get(LogisticsLocation, reservations[0].location_id).warehouse_id,  # type: ignore[union-attr]
        status="shipped",
    )
    session.add(shipment)
    session.flush()
    for reservation in reservations:
        quantity = stock.q3(reservation.quantity)
        shipment.lines.append(
            LogisticsShipmentLine(
                order_line_id=reservation.order_line_id,
                product_id=reservation.product_id,
                location_id=reservation.location_id,
                quantity=quantity,
            )
        )
        stock.issue_reserved(session, actor, reservation, quantity, shipment_id=shipment.id, reference=shipment.number)
    session.commit()


@pytest.fixture
def order(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> Order:
    """An order of C001 for 3 × P-100, confirmed and shipped in full."""
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "3")
    made = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, made)
    ship_all(session, admin, made)
    return made


def as_user(client: FlaskClient, user: User) -> None:
    client.get("/logout")
    login(client, user.email, PASSWORD)


def post(client: FlaskClient, path: str, token_page: str, **form: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, token_page), **form})


def the_return(session: Session) -> LogisticsReturn:
    session.rollback()  # end the read snapshot: see what the requests committed
    ret = session.scalar(select(LogisticsReturn))
    assert ret is not None
    return ret


@pytest.mark.req("LG-9")
def test_the_whole_return_path_through_the_screens(
    client: FlaskClient, session: Session, order: Order, people: dict[str, User], seed: dict[str, Any]
) -> None:
    line_id = order.lines[0].id
    as_user(client, people["sales"])
    new = f"/logistics/orders/{order.id}/returns/new"
    page = client.get(new)
    assert page.status_code == 200
    assert f'name="qty_{line_id}"' in page.get_data(as_text=True)
    # Above the returnable quantity: the form comes back with the reason, nothing saved.
    refused = post(client, new, new, **{f"qty_{line_id}": "4", f"reason_{line_id}": "quality"})
    assert refused.status_code == 422
    assert "You can return at most 3 of P-100." in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(LogisticsReturn)) == 0
    sent = post(
        client, new, new, **{f"qty_{line_id}": "2", f"reason_{line_id}": "quality", f"detail_{line_id}": "noisy"}
    )
    assert sent.status_code == 302
    ret = the_return(session)
    detail = f"/logistics/returns/{ret.id}"
    assert sent.headers["Location"].endswith(detail)
    body = client.get(detail).get_data(as_text=True)
    assert ret.number in body and 'id="return-review"' not in body  # sales may not review

    as_user(client, people["rm"])
    body = client.get(detail).get_data(as_text=True)
    assert 'id="return-review"' in body and "data-confirm=" in body  # reject asks first
    listed = client.get("/logistics/returns?waiting=1").get_data(as_text=True)
    assert ret.number in listed
    assert post(client, f"{detail}/review", detail, decision="approve", note="ok").status_code == 302
    assert the_return(session).status == "reviewed"

    as_user(client, people["md"])
    body = client.get(detail).get_data(as_text=True)
    assert 'id="return-decision"' in body
    ret = the_return(session)
    line = ret.lines[0]
    assert (
        post(client, f"{detail}/decision", detail, decision="approve", **{f"approved_{line.id}": "2"}).status_code
        == 302
    )
    assert the_return(session).status == "approved"

    as_user(client, people["wh"])
    too_many = post(client, f"{detail}/receipt", detail, **{f"received_{line.id}": "3"})
    assert too_many.status_code == 302
    assert the_return(session).status == "approved"  # refused, flashed
    assert "At most 2 of P-100 can be received" in client.get(detail).get_data(as_text=True)
    post(client, f"{detail}/receipt", detail, **{f"received_{line.id}": "2"})
    assert the_return(session).status == "received"

    as_user(client, people["qc"])
    body = client.get(detail).get_data(as_text=True)
    assert 'id="return-inspection"' in body
    post(client, f"{detail}/inspection", detail, **{f"restock_{line.id}": "1", f"scrap_{line.id}": "1"})
    ret = the_return(session)
    assert ret.status == "closed"
    kinds = sorted(session.scalars(select(LogisticsMove.kind).where(LogisticsMove.return_id == ret.id)))
    assert kinds == ["return", "return", "scrap"]
    assert stock.free_quantity(session, seed["products"][0].id) == Q("1.000")

    pdf = client.get(f"{detail}/form.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")


@pytest.mark.req("LG-9")
def test_returns_list_filters_and_empty_state(
    client: FlaskClient, session: Session, order: Order, people: dict[str, User]
) -> None:
    as_user(client, people["rm"])
    empty = client.get("/logistics/returns")
    assert empty.status_code == 200 and "No return found." in empty.get_data(as_text=True)
    as_user(client, people["sales"])
    new = f"/logistics/orders/{order.id}/returns/new"
    post(client, new, new, **{f"qty_{order.lines[0].id}": "1", f"reason_{order.lines[0].id}": "not_needed"})
    ret = the_return(session)
    page = client.get("/logistics/returns?status=requested").get_data(as_text=True)
    assert ret.number in page
    assert ret.number not in client.get("/logistics/returns?status=approved").get_data(as_text=True)
    # The quality inspector sees nothing waiting for them yet.
    as_user(client, people["qc"])
    assert ret.number not in client.get("/logistics/returns?waiting=1").get_data(as_text=True)


@pytest.mark.req("LG-9")
def test_a_customer_requests_a_return_in_the_portal_for_its_own_order_only(
    client: FlaskClient,
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    order: Order,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    other = make_order(session, admin, customer="C002", lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, other)
    ship_all(session, admin, other)

    as_user(client, people["buyer"])
    listing = client.get("/portal/deliveries/returns")
    assert listing.status_code == 200
    text = listing.get_data(as_text=True)
    assert order.number in text and other.number not in text
    assert client.get(f"/portal/deliveries/returns/new/{other.id}").status_code == 404
    new = f"/portal/deliveries/returns/new/{order.id}"
    line_id = order.lines[0].id
    sent = post(client, new, new, **{f"qty_{line_id}": "1", f"reason_{line_id}": "damaged", "note": "box crushed"})
    assert sent.status_code == 302
    ret = the_return(session)
    assert ret.requested_by_id == people["buyer"].id and ret.note == "box crushed"
    page = client.get(f"/portal/deliveries/returns/{ret.id}")
    assert page.status_code == 200 and ret.number in page.get_data(as_text=True)
    pdf = client.get(f"/portal/deliveries/returns/{ret.id}/form.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    # Someone else's order cannot be returned through a forged post either.
    forged = post(client, f"/portal/deliveries/returns/new/{other.id}", new, **{f"qty_{other.lines[0].id}": "1"})
    assert forged.status_code == 404
    assert session.scalar(select(func.count()).select_from(LogisticsReturn)) == 1

    # Staff do not use the portal's pages.
    as_user(client, people["sales"])
    assert client.get("/portal/deliveries/returns").status_code == 403
