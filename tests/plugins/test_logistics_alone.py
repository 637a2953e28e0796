"""Logistics enabled alone — no intake, review or billing — takes a remote order the whole way.

A Chengdu customer's order of a Chongqing company (LG-1): confirmed (stock reserved),
released at the outbound check, picked by a picking list, packed, shipped with the
SUGGESTED carrier and a tracking number, tracked, received by the customer's portal
account, completed; the waybill and the delivery note print. Nothing here needs another
plugin: the logistics steps follow core's *submitted* directly.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

import pytest
from logistics_helpers import location, make_warehouse, receive, remote_payload, set_home_region
from pypdf import PdfReader
from sqlalchemy.orm import Session

from core.documents import render_document
from core.models import User
from core.services.orders import take_action
from core.testing import make_order, make_user
from plugins.logistics import carriers, delivery, flow, shipping, stock, tracking
from plugins.logistics.models import LogisticsOrder
from plugins.logistics.panel import line_rows


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


@pytest.mark.req("LG-1")
@pytest.mark.req("CORE-2")
def test_a_remote_order_goes_the_whole_way_with_logistics_alone(
    session: Session, state: Any, admin: User, seed: dict[str, Any]
) -> None:
    registry = state.registry
    assert not any(key.startswith(("intake.", "review.", "billing.")) for key in registry.steps)
    hq = seed["hq"]
    set_home_region(session, "重庆市")
    seller = make_user(session, "seller@example.com", ["sales"], branch=hq)
    keeper = make_user(session, "keeper@example.com", ["warehouse"], branch=hq)
    buyer = make_user(session, "buyer@example.com", ["customer"], customer=seed["remote"])
    wh = make_warehouse(session, hq.company_id)
    p100, _p200, p300 = seed["products"]
    receive(session, admin, p100, location(wh, "B-01"), "5")
    receive(session, admin, p300, location(wh, "A-01"), "500")
    sf = carriers.create_carrier(session, admin, code="SF", name="顺丰速运", insurance_rate="0.5")
    fast = carriers.create_service(session, admin, sf.id, code="EXP", name="特快", volumetric_divisor=6000)
    slow = carriers.create_service(session, admin, sf.id, code="STD", name="标快", volumetric_divisor=6000)
    for service, days, first, extra in ((fast, 1, "20", "8"), (slow, 3, "12", "3")):
        carriers.add_transit(session, admin, service.id, from_province="重庆市", to_province="四川省", days=days)
        carriers.add_rate(
            session,
            admin,
            service.id,
            to_province="*",
            basis="weight",
            first_unit="1",
            first_price=first,
            additional_unit="1",
            additional_price=extra,
        )
    session.commit()

    far = (dt.date.today() + dt.timedelta(days=40)).isoformat()
    order = make_order(session, seller, **remote_payload(requested_date=far))
    take_action(session, registry, seller, order, "submit")
    assert order.step == "submitted"  # straight to core's submitted: no intake, no review
    take_action(session, registry, admin, order, "confirm")
    session.commit()
    facts = session.get(LogisticsOrder, order.id)
    assert facts is not None and facts.remote is True
    assert order.step == flow.OUTBOUND_CHECK
    assert all(row["backorder"] == 0 for row in line_rows(session, order))

    take_action(session, registry, keeper, order, "release")
    shipment = shipping.plan_shipment(session, keeper, order)
    picks = shipping.create_pick_list(session, keeper, [shipment.id])
    assert [row.location.code for row in shipping.pick_rows(session, picks)] == ["A-01", "B-01"]
    shipping.confirm_pick(session, keeper, picks.id, {})
    shipping.add_package(session, keeper, shipment.id, "14", "50", "40", "30")
    shipping.mark_packed(session, keeper, shipment.id)
    suggestion = shipping.suggestion_for(session, shipment)
    assert suggestion.best is not None and suggestion.best.service.id == slow.id  # cheapest meeting the date
    shipping.choose_carrier(session, keeper, shipment.id, suggestion.best.service.id)
    shipping.ship(session, keeper, shipment.id, tracking_number="SF7100000001")
    session.commit()
    assert order.step == flow.RECEIPT
    assert stock.free_quantity(session, p100.id) == 3

    tracking.add_event(session, keeper, shipment.id, "in_transit", dt.datetime.now(dt.UTC), "成都转运中心")
    delivery.confirm_receipt(session, buyer, shipment.id)  # the customer, in the portal
    session.commit()
    assert (order.status, order.step) == ("confirmed", "confirmed")
    take_action(session, registry, admin, order, "complete")
    session.commit()
    assert order.status == "completed"

    waybill = pdf_text(render_document(session, registry, "logistics.waybill", order))
    assert "SF7100000001" in waybill and "成都" in waybill and "P-100" in waybill
    note = pdf_text(render_document(session, registry, "logistics.delivery_note", order))
    assert shipment.number in note and "P-300" in note
