"""Returns (退换货, LG-9): request, review, approval, receipt, QC disposition and their stock effects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import hookimpl
from core.models import Notification, Order, User
from core.services import ServiceError
from core.settings import set_setting
from core.testing import make_order, make_user
from plugins.logistics import flow, stock
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import (
    LogisticsLocation,
    LogisticsMove,
    LogisticsReservation,
    LogisticsReturn,
    LogisticsShipment,
    LogisticsShipmentLine,
    LogisticsStock,
    LogisticsWarehouse,
)
from plugins.logistics.returns import (
    ReturnLineInput,
    attach_stamped_request,
    decide_return,
    inspect_return,
    receive_return,
    request_return,
    returnable_quantities,
    review_return,
    set_freight_responsibility,
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
    """Everyone the return procedure involves, in the head office's branch."""
    hq = seed["hq"]
    return {
        "sales": make_user(session, "sales@example.com", ["sales"], branch=hq),
        "rm": make_user(session, "rm@example.com", ["regional_manager"], branch=hq),
        "md": make_user(session, "md@example.com", ["marketing_director"], branch=hq),
        "wh": make_user(session, "wh@example.com", ["warehouse"], branch=hq),
        "qc": make_user(session, "qc@example.com", ["quality_inspector"], branch=hq),
    }


class _Billing:
    """A stand-in billing plugin: records each inspected return it is told about."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str, list[str]]] = []

    @hookimpl(optionalhook=True)
    def ordo_logistics_return_inspected(self, request: LogisticsReturn, session: Session) -> None:
        self.calls.append(
            (request.id, request.status, [d.disposition for line in request.lines for d in line.dispositions])
        )


@pytest.fixture
def billing(state: Any) -> Iterator[_Billing]:
    plugin = _Billing()
    state.registry.pm.register(plugin, name="test-billing")
    yield plugin
    state.registry.pm.unregister(plugin)


def ship_all(session: Session, actor: User, order: Order) -> LogisticsShipment:
    """Ship every reservation of ``order`` (a shipped shipment whose lines issue the reserved stock)."""
    reservations = list(session.scalars(select(LogisticsReservation).where(LogisticsReservation.order_id == order.id)))
    assert reservations, "nothing reserved to ship"
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
                picked_quantity=quantity,
            )
        )
        stock.issue_reserved(session, actor, reservation, quantity, shipment_id=shipment.id, reference=shipment.number)
    session.commit()
    return shipment


def shipped_order(
    session: Session, state: Any, admin: User, people: dict[str, User], wh: LogisticsWarehouse, qty: str = "3"
) -> Order:
    """An order of ``qty`` × P-100 by the salesperson, confirmed and shipped in full."""
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": qty}])
    confirm(session, state.registry, admin, order)
    ship_all(session, admin, order)
    return order


def line_of(order: Order) -> int:
    return order.lines[0].id


def approved_return(
    session: Session, people: dict[str, User], order: Order, qty: str, reason: str = "quality"
) -> LogisticsReturn:
    request = request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q(qty), reason)])
    review_return(session, people["rm"], request.id, approve=True, note="checked on site")
    decide_return(session, people["md"], request.id, approve=True, note="ok")
    session.commit()
    return request


def on_hand(session: Session, product_id: int, location_id: int) -> Decimal:
    row = session.scalar(
        select(LogisticsStock).where(LogisticsStock.product_id == product_id, LogisticsStock.location_id == location_id)
    )
    return stock.q3(row.on_hand) if row is not None else Q("0.000")


def moves_of(session: Session, request: LogisticsReturn) -> list[tuple[str, str, Decimal]]:
    rows = session.execute(
        select(LogisticsMove.kind, LogisticsLocation.code, LogisticsMove.quantity)
        .join(LogisticsLocation, LogisticsLocation.id == LogisticsMove.location_id)
        .where(LogisticsMove.return_id == request.id)
        .order_by(LogisticsMove.id)
    )
    return [(kind, code, stock.q3(qty)) for kind, code, qty in rows]


@pytest.mark.req("LG-9")
def test_restocked_return_raises_free_stock_serves_a_backorder_and_calls_billing_once(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
    billing: _Billing,
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    first = shipped_order(session, state, admin, people, warehouse, qty="2")
    waiting = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "1"}])
    confirm(session, state.registry, admin, waiting)
    assert stock.backorder_quantities(session, waiting) == {line_of(waiting): Q("1.000")}

    request = request_return(
        session, people["sales"], first.id, [ReturnLineInput(line_of(first), Q("1"), "quality", "bearing noise")]
    )
    session.commit()
    assert request.number.startswith("RET") and request.status == "requested"
    assert returnable_quantities(session, first) == {line_of(first): Q("1.000")}
    review_return(session, people["rm"], request.id, approve=True, note="seen the photos")
    decide_return(session, people["md"], request.id, approve=True, note="")
    receive_return(session, people["wh"], request.id, {request.lines[0].id: Q("1")})
    session.commit()
    assert request.status == "received"
    inspect_return(session, people["qc"], request.id, [(request.lines[0].id, "restock", Q("1"), None, "as new")])
    session.commit()

    assert request.status == "closed" and request.closed_at is not None
    assert moves_of(session, request) == [("return", "A-01", Q("1.000"))]
    # The returned unit went straight to the waiting order: its backorder is served.
    assert stock.backorder_quantities(session, waiting) == {}
    assert stock.reserved_quantities(session, waiting.id) == {line_of(waiting): Q("1.000")}
    assert billing.calls == [(request.id, "closed", ["restock"])]
    # What was returned cannot be returned again.
    assert returnable_quantities(session, first) == {line_of(first): Q("1.000")}


@pytest.mark.req("LG-9")
def test_rework_downgrade_and_scrap_land_in_blocked_areas_and_scrap_nets_zero(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
    billing: _Billing,
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "3")
    order = shipped_order(session, state, admin, people, warehouse, qty="3")
    request = approved_return(session, people, order, "3")
    line = request.lines[0]
    receive_return(session, people["wh"], request.id, {line.id: Q("3")})
    inspect_return(
        session,
        people["qc"],
        request.id,
        [
            (line.id, "rework", Q("1"), None, "repaint"),
            (line.id, "downgrade", Q("1"), None, "scratched"),
            (line.id, "scrap", Q("1"), None, "broken housing"),
        ],
    )
    session.commit()

    assert moves_of(session, request) == [
        ("rework", "QC-REWORK", Q("1.000")),
        ("downgrade", "QC-DOWNGRADE", Q("1.000")),
        ("return", "QC-SCRAP", Q("1.000")),
        ("scrap", "QC-SCRAP", Q("-1.000")),
    ]
    areas = {loc.code: loc for loc in session.scalars(select(LogisticsLocation))}
    assert all(areas[code].blocked for code in ("QC-REWORK", "QC-DOWNGRADE", "QC-SCRAP"))
    assert on_hand(session, p100.id, areas["QC-REWORK"].id) == Q("1.000")
    assert on_hand(session, p100.id, areas["QC-DOWNGRADE"].id) == Q("1.000")
    assert on_hand(session, p100.id, areas["QC-SCRAP"].id) == Q("0.000")
    # Nothing became sellable: blocked areas are never reserved.
    assert stock.free_quantity(session, p100.id) == Q("0.000")
    assert sorted(d.disposition for d in line.dispositions) == ["downgrade", "rework", "scrap"]
    assert billing.calls == [(request.id, "closed", ["rework", "downgrade", "scrap"])]


@pytest.mark.req("LG-9")
def test_a_return_above_the_returnable_quantity_is_refused_and_nothing_changes(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = shipped_order(session, state, admin, people, warehouse, qty="2")
    with pytest.raises(LogisticsError) as refused:
        request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("3"), "quality")])
    assert refused.value.status == 422 and refused.value.code == "above_returnable"
    assert refused.value.message == "You can return at most 2 of P-100."
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LogisticsReturn)) == 0

    first = request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("2"), "quality")])
    session.commit()
    assert returnable_quantities(session, order) == {line_of(order): Q("0")}
    with pytest.raises(LogisticsError, match="at most 0 of P-100"):
        request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("1"), "quality")])
    session.rollback()
    # A rejected return gives the quantity back.
    review_return(session, people["rm"], first.id, approve=False, note="photos show misuse")
    session.commit()
    assert returnable_quantities(session, order) == {line_of(order): Q("2.000")}
    for bad, code in ((Q("0"), "invalid_quantity"), (Q("-1"), "invalid_quantity")):
        with pytest.raises(LogisticsError) as refused:
            request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), bad, "quality")])
        assert refused.value.code == code
        session.rollback()
    with pytest.raises(LogisticsError) as refused:
        request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("1"), "whim")])
    assert refused.value.code == "invalid_reason"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LogisticsReturn)) == 1


@pytest.mark.req("LG-9")
def test_nothing_shipped_means_nothing_returnable(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    assert returnable_quantities(session, order) == {line_of(order): Q("0")}
    with pytest.raises(LogisticsError, match="at most 0"):
        request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("1"), "quality")])


@pytest.mark.req("LG-9")
def test_review_and_approval_belong_to_the_roles_the_settings_name(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = shipped_order(session, state, admin, people, warehouse, qty="2")
    request = request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("1"), "quality")])
    session.commit()
    # The review role was told.
    told = session.scalars(select(Notification.user_id).where(Notification.template == "logistics.return_requested"))
    assert people["rm"].id in set(told)

    for wrong in ("md", "sales", "qc"):
        with pytest.raises(LogisticsError) as refused:
            review_return(session, people[wrong], request.id, approve=True)
        assert refused.value.status == 403
        session.rollback()
    # The approver may not decide before the review.
    with pytest.raises(LogisticsError) as refused:
        decide_return(session, people["md"], request.id, approve=True)
    assert refused.value.status == 409
    session.rollback()
    # Another role named in the settings: the regional manager no longer reviews.
    set_setting(session, flow.RETURNS_REVIEW_ROLE, "sales_manager")
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        review_return(session, people["rm"], request.id, approve=True)
    assert refused.value.status == 403 and refused.value.code == "wrong_role"
    session.rollback()
    session.refresh(request)
    assert request.status == "requested" and request.reviewed_by_id is None

    set_setting(session, flow.RETURNS_REVIEW_ROLE, "regional_manager")
    review_return(session, people["rm"], request.id, approve=True)
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        decide_return(session, people["rm"], request.id, approve=True)
    assert refused.value.status == 403
    session.rollback()
    told = session.scalars(select(Notification.user_id).where(Notification.template == "logistics.return_reviewed"))
    assert people["md"].id in set(told)
    decide_return(session, people["md"], request.id, approve=True, approved_quantities={request.lines[0].id: Q("1")})
    session.commit()
    assert request.status == "approved" and request.lines[0].approved_quantity == Q("1")
    told = session.scalars(select(Notification.user_id).where(Notification.template == "logistics.return_decided"))
    assert people["sales"].id in set(told)


@pytest.mark.req("LG-9")
def test_a_non_quality_reason_needs_an_exception_to_be_approved(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = shipped_order(session, state, admin, people, warehouse, qty="2")
    request = request_return(
        session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("2"), "not_needed", "project cancelled")]
    )
    review_return(session, people["rm"], request.id, approve=True)
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        decide_return(session, people["md"], request.id, approve=True)
    assert refused.value.status == 422 and refused.value.code == "exception_required"
    session.rollback()
    session.refresh(request)
    assert request.status == "reviewed" and request.lines[0].approved_quantity is None
    # Rejecting needs a reason.
    with pytest.raises(LogisticsError, match="Say why"):
        decide_return(session, people["md"], request.id, approve=False)
    session.rollback()
    decide_return(
        session, people["md"], request.id, approve=True, exception_reason="long-standing key account; goodwill"
    )
    session.commit()
    assert request.status == "approved"
    assert request.exception_reason == "long-standing key account; goodwill"


@pytest.mark.req("LG-9")
def test_receiving_more_than_approved_is_refused(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "3")
    order = shipped_order(session, state, admin, people, warehouse, qty="3")
    request = request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("3"), "quality")])
    review_return(session, people["rm"], request.id, approve=True)
    session.commit()
    line_id = request.lines[0].id
    with pytest.raises(LogisticsError, match="At most 3 of P-100 can be approved"):
        decide_return(session, people["md"], request.id, approve=True, approved_quantities={line_id: Q("4")})
    session.rollback()
    decide_return(session, people["md"], request.id, approve=True, approved_quantities={line_id: Q("2")})
    session.commit()
    # Only what is approved still counts against the returnable quantity.
    assert returnable_quantities(session, order) == {line_of(order): Q("1.000")}
    with pytest.raises(LogisticsError) as refused:
        receive_return(session, people["wh"], request.id, {line_id: Q("3")})
    assert refused.value.status == 422 and refused.value.code == "above_approved"
    session.rollback()
    session.refresh(request)
    assert request.status == "approved" and request.lines[0].received_quantity is None
    with pytest.raises(LogisticsError) as refused:
        receive_return(session, people["qc"], request.id, {line_id: Q("2")})
    assert refused.value.status == 403
    session.rollback()
    receive_return(session, people["wh"], request.id, {line_id: Q("2")})
    session.commit()
    assert request.status == "received" and request.lines[0].received_quantity == Q("2")


@pytest.mark.req("LG-9")
def test_dispositions_must_add_up_to_the_received_quantity(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
    billing: _Billing,
) -> None:
    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    order = shipped_order(session, state, admin, people, warehouse, qty="2")
    request = approved_return(session, people, order, "2")
    line_id = request.lines[0].id
    receive_return(session, people["wh"], request.id, {line_id: Q("2")})
    session.commit()
    for decisions in (
        [(line_id, "restock", Q("1"), None, "")],
        [(line_id, "restock", Q("1"), None, ""), (line_id, "scrap", Q("2"), None, "")],
    ):
        with pytest.raises(LogisticsError) as refused:
            inspect_return(session, people["qc"], request.id, decisions)
        assert refused.value.code == "dispositions_mismatch" and refused.value.status == 422
        session.rollback()
    with pytest.raises(LogisticsError) as refused:
        inspect_return(session, people["qc"], request.id, [(line_id, "melt", Q("2"), None, "")])
    assert refused.value.code == "invalid_disposition"
    session.rollback()
    # A blocked location is no place to restock.
    blocked = LogisticsLocation(warehouse_id=warehouse.id, code="QC-HOLD", blocked=True)
    session.add(blocked)
    session.commit()
    with pytest.raises(LogisticsError) as refused:
        inspect_return(session, people["qc"], request.id, [(line_id, "restock", Q("2"), blocked.id, "")])
    assert refused.value.code == "invalid_location"
    session.rollback()
    session.refresh(request)
    assert request.status == "received" and moves_of(session, request) == []
    assert billing.calls == []
    assert stock.free_quantity(session, p100.id) == Q("0.000")
    # Restocking into a chosen sellable location.
    b01 = location(warehouse, "B-01")
    inspect_return(session, people["qc"], request.id, [(line_id, "restock", Q("2"), b01.id, "")])
    session.commit()
    assert on_hand(session, p100.id, b01.id) == Q("2.000")
    assert len(billing.calls) == 1
    # A closed return cannot be inspected twice.
    with pytest.raises(LogisticsError) as refused:
        inspect_return(session, people["qc"], request.id, [(line_id, "restock", Q("2"), None, "")])
    assert refused.value.status == 409
    session.rollback()
    assert len(billing.calls) == 1


@pytest.mark.req("LG-9")
def test_a_portal_user_requests_returns_for_its_own_orders_only(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "4")
    own = shipped_order(session, state, admin, people, warehouse, qty="2")
    other = make_order(session, admin, customer="C002", lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, other)
    ship_all(session, admin, other)
    portal = make_user(session, "buyer@c001.example.com", ["customer"], customer=seed["local"])

    request = request_return(
        session, portal, own.id, [ReturnLineInput(line_of(own), Q("1"), "damaged", "box crushed")], note="photos sent"
    )
    session.commit()
    assert request.requested_by_id == portal.id and request.status == "requested"
    with pytest.raises(ServiceError) as refused:
        request_return(session, portal, other.id, [ReturnLineInput(line_of(other), Q("1"), "damaged")])
    assert refused.value.status == 404
    session.rollback()
    assert session.scalar(select(func.count()).select_from(LogisticsReturn)) == 1


@pytest.mark.req("LG-9")
def test_stamped_form_and_freight_responsibility_are_recorded(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
) -> None:
    receive(session, admin, seed["products"][0], location(warehouse, "A-01"), "2")
    order = shipped_order(session, state, admin, people, warehouse, qty="2")
    request = request_return(session, people["sales"], order.id, [ReturnLineInput(line_of(order), Q("1"), "quality")])
    session.commit()
    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    attach_stamped_request(session, people["sales"], request.id, ("stamped.pdf", pdf, "application/pdf"))
    session.commit()
    assert request.stamped_attachment_id is not None
    with pytest.raises(LogisticsError) as refused:
        set_freight_responsibility(session, people["rm"], request.id, "nobody")
    assert refused.value.code == "invalid_party"
    session.rollback()
    with pytest.raises(LogisticsError) as refused:
        set_freight_responsibility(session, people["sales"], request.id, "customer")
    assert refused.value.status == 403
    session.rollback()
    set_freight_responsibility(session, people["rm"], request.id, "customer")
    session.commit()
    assert request.freight_paid_by == "customer"


@pytest.mark.req("LG-9")
def test_goods_shipped_by_the_shipping_service_come_back_through_a_return(
    session: Session,
    state: Any,
    admin: User,
    seed: dict[str, Any],
    warehouse: LogisticsWarehouse,
    people: dict[str, User],
    billing: _Billing,
) -> None:
    from core.services.orders import take_action
    from plugins.logistics import shipping

    p100 = seed["products"][0]
    receive(session, admin, p100, location(warehouse, "A-01"), "2")
    order = make_order(session, people["sales"], lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    take_action(session, state.registry, admin, order, "release")
    shipment = shipping.plan_shipment(session, people["wh"], order)
    shipping.ship(session, people["wh"], shipment.id)
    session.commit()
    assert returnable_quantities(session, order) == {line_of(order): Q("2.000")}

    request = approved_return(session, people, order, "2", reason="wrong_item")
    line_id = request.lines[0].id
    receive_return(session, people["wh"], request.id, {line_id: Q("2")})
    inspect_return(session, people["qc"], request.id, [(line_id, "restock", Q("2"), None, "")])
    session.commit()
    assert stock.free_quantity(session, p100.id) == Q("2.000")
    assert returnable_quantities(session, order) == {line_of(order): Q("0")}
    assert [call[0] for call in billing.calls] == [request.id]
