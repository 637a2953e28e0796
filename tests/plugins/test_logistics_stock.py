"""Stock services (LG-2): receipts feeding backorders, adjustments, transfers, warehouses,
locations, product facts and the replenishment list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest
from logistics_helpers import confirm, location, make_warehouse, receive, remote_payload, set_home_region
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import AuditLog, User
from core.testing import make_order, make_user
from plugins.logistics import replenishment, stock, warehouses
from plugins.logistics.errors import LogisticsError
from plugins.logistics.models import LogisticsLocation, LogisticsOrder, LogisticsWarehouse


@pytest.fixture
def ordo_plugins() -> Sequence[str]:
    return ["logistics"]


@pytest.fixture
def wh(session: Session, seed: dict[str, Any]) -> LogisticsWarehouse:
    return make_warehouse(session, seed["hq"].company_id)


@pytest.fixture
def keeper(session: Session) -> User:
    return make_user(session, "keeper@example.com", ["warehouse"])


def _promise(session: Session, order_id: int, day: str) -> None:
    facts = session.get(LogisticsOrder, order_id)
    assert facts is not None
    facts.promised_date = dt.date.fromisoformat(day)
    session.commit()


@pytest.mark.req("LG-2")
def test_helpers_confirm_a_remote_order(session: Session, state: Any, admin: User, seed: dict[str, Any]) -> None:
    wh = make_warehouse(session, seed["hq"].company_id)
    set_home_region(session, "重庆市")
    receive(session, admin, seed["products"][0], location(wh, "A-01"), "5")
    order = make_order(session, admin, **remote_payload())
    confirm(session, state.registry, admin, order)
    assert order.status == "confirmed"
    facts = session.get(LogisticsOrder, order.id)
    assert facts is not None and facts.remote
    assert stock.free_quantity(session, seed["products"][0].id) == Decimal("3.000")


@pytest.mark.req("LG-2")
def test_a_receipt_serves_the_earliest_promised_order_first(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100 = seed["products"][0]
    late = make_order(session, admin, lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, late)
    early = make_order(session, admin, lines=[{"product": "P-100", "quantity": "3"}])
    confirm(session, state.registry, admin, early)
    _promise(session, late.id, "2026-12-20")
    _promise(session, early.id, "2026-12-01")
    stock.receive_stock(session, keeper, p100.id, location(wh, "A-01").id, Decimal("4"), reference="PO-9")
    session.commit()
    assert stock.backorder_quantities(session, early) == {}
    assert stock.backorder_quantities(session, late) == {late.lines[0].id: Decimal("2.000")}
    entry = session.scalar(select(AuditLog).where(AuditLog.entity == "logistics_move", AuditLog.action == "receipt"))
    assert entry is not None


@pytest.mark.req("LG-2")
def test_receipts_and_adjustments_refuse_bad_input_and_change_nothing(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100 = seed["products"][0]
    a01 = location(wh, "A-01")
    receive(session, admin, p100, a01, "5")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "4"}])
    confirm(session, state.registry, admin, order)
    cases = [
        (lambda: stock.receive_stock(session, keeper, p100.id, a01.id, Decimal("0")), "quantity_not_positive"),
        (lambda: stock.receive_stock(session, keeper, p100.id, a01.id, Decimal("-2")), "quantity_not_positive"),
        (lambda: stock.receive_stock(session, keeper, 9999, a01.id, Decimal("2")), "unknown_product"),
        (lambda: stock.adjust_stock(session, keeper, p100.id, a01.id, Decimal("-1"), reason=" "), "reason_required"),
        (
            lambda: stock.adjust_stock(session, keeper, p100.id, a01.id, Decimal("-2"), reason="lost"),
            "insufficient_stock",
        ),
    ]
    for call, code in cases:
        with pytest.raises(LogisticsError) as refused:
            call()
        assert refused.value.code == code
        session.rollback()
    seller = make_user(session, "s@example.com", ["sales"])
    with pytest.raises(LogisticsError) as forbidden:
        stock.receive_stock(session, seller, p100.id, a01.id, Decimal("1"))
    assert forbidden.value.status == 403
    session.rollback()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("5.000")
    assert stock.ledger_total(session, p100.id) == Decimal("5.000")
    stock.adjust_stock(session, keeper, p100.id, a01.id, Decimal("-1"), reason="damaged in store")
    session.commit()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("4.000")
    assert stock.reserved_quantities(session, order.id) == {order.lines[0].id: Decimal("4.000")}


@pytest.mark.req("LG-2")
def test_a_transfer_moves_free_units_only(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100 = seed["products"][0]
    a01, b01 = location(wh, "A-01"), location(wh, "B-01")
    receive(session, admin, p100, a01, "5")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "2"}])
    confirm(session, state.registry, admin, order)
    with pytest.raises(LogisticsError) as refused:
        stock.transfer_stock(session, keeper, p100.id, a01.id, b01.id, Decimal("4"))
    assert refused.value.code == "insufficient_stock"
    session.rollback()
    stock.transfer_stock(session, keeper, p100.id, a01.id, b01.id, Decimal("3"))
    session.commit()
    assert stock.on_hand_at(session, p100.id, a01.id) == Decimal("2.000")
    assert stock.on_hand_at(session, p100.id, b01.id) == Decimal("3.000")
    assert stock.ledger_total(session, p100.id) == Decimal("5.000")


@pytest.mark.req("LG-2")
def test_warehouses_codes_default_and_locations(session: Session, seed: dict[str, Any], keeper: User) -> None:
    first = warehouses.create_warehouse(session, keeper, {"code": "cq", "name": "重庆仓"})
    second = warehouses.create_warehouse(session, keeper, {"code": "CD", "name": "成都仓", "is_default": True})
    session.commit()
    session.refresh(first)
    assert first.code == "CQ" and not first.is_default and second.is_default
    with pytest.raises(LogisticsError) as dup:
        warehouses.create_warehouse(session, keeper, {"code": "CQ", "name": "again"})
    assert dup.value.code == "duplicate_code" and dup.value.status == 409
    session.rollback()
    for bad in ({"code": "", "name": "x"}, {"code": "A B", "name": "x"}, {"code": "OK", "name": ""}):
        with pytest.raises(LogisticsError):
            warehouses.create_warehouse(session, keeper, bad)
        session.rollback()
    loc = warehouses.create_location(session, keeper, first.id, {"code": "A-01"})
    with pytest.raises(LogisticsError) as clash:
        warehouses.create_location(session, keeper, first.id, {"code": "a-01"})
    assert clash.value.code == "duplicate_location"
    session.rollback()
    warehouses.create_location(session, keeper, second.id, {"code": "A-01"})  # unique per warehouse only
    session.commit()
    assert loc.sequence == 10 and not loc.blocked
    with pytest.raises(LogisticsError) as forbidden:
        warehouses.create_warehouse(session, make_user(session, "s@example.com", ["sales"]), {"code": "X", "name": "x"})
    assert forbidden.value.status == 403


@pytest.mark.req("LG-2")
def test_a_location_with_reserved_units_cannot_be_blocked_nor_one_with_stock_retired(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    a01 = location(wh, "A-01")
    receive(session, admin, seed["products"][0], a01, "2")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "1"}])
    confirm(session, state.registry, admin, order)
    with pytest.raises(LogisticsError) as reserved:
        warehouses.update_location(session, keeper, a01.id, {"blocked": True})
    assert reserved.value.code == "location_reserved"
    session.rollback()
    with pytest.raises(LogisticsError) as holding:
        warehouses.update_location(session, keeper, a01.id, {"active": False})
    assert holding.value.code == "location_has_stock"
    session.rollback()
    with pytest.raises(LogisticsError) as wh_holding:
        warehouses.update_warehouse(session, keeper, wh.id, {"active": False, "is_default": False})
    assert wh_holding.value.code == "warehouse_has_stock"
    session.rollback()
    b01 = warehouses.update_location(session, keeper, location(wh, "B-01").id, {"blocked": True, "name": "QC"})
    session.commit()
    assert b01.blocked


@pytest.mark.req("LG-2")
def test_blocked_special_locations_are_never_reserved(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse
) -> None:
    rework = warehouses.special_location(session, wh.id, "rework")
    assert (rework.code, rework.blocked) == ("QC-REWORK", True)
    assert warehouses.special_location(session, wh.id, "rework").id == rework.id
    assert {warehouses.special_location(session, wh.id, k).code for k in ("downgrade", "scrap")} == {
        "QC-DOWNGRADE",
        "QC-SCRAP",
    }
    session.commit()
    receive(session, admin, seed["products"][0], rework, "5")
    order = make_order(session, admin, lines=[{"product": "P-100", "quantity": "1"}])
    confirm(session, state.registry, admin, order)
    assert stock.reserved_quantities(session, order.id) == {}
    assert stock.free_quantity(session, seed["products"][0].id) == Decimal("0.000")


@pytest.mark.req("LG-2")
def test_product_facts_must_not_be_negative(session: Session, seed: dict[str, Any], keeper: User) -> None:
    p100 = seed["products"][0]
    with pytest.raises(LogisticsError) as refused:
        warehouses.set_product_facts(session, keeper, p100.id, "1", "-0.1", "0")
    assert refused.value.details == {"unit_volume": ["min"]}
    session.rollback()
    facts = warehouses.set_product_facts(session, keeper, p100.id, "12.5", "0.035", "10")
    session.commit()
    assert (facts.unit_weight, facts.unit_volume, facts.reorder_level) == (
        Decimal("12.5"),
        Decimal("0.035"),
        Decimal("10"),
    )


@pytest.mark.req("LG-2")
def test_replenishment_list_suggests_backorders_plus_reorder_level_minus_free(
    session: Session, state: Any, admin: User, seed: dict[str, Any], wh: LogisticsWarehouse, keeper: User
) -> None:
    p100, p200, p300 = seed["products"]
    receive(session, admin, p300, location(wh, "A-01"), "30")
    order = make_order(session, admin)  # 2 × P-100, 100 × P-300
    confirm(session, state.registry, admin, order)
    _promise(session, order.id, "2026-11-30")
    warehouses.set_product_facts(session, keeper, p100.id, 0, 0, "5")
    warehouses.set_product_facts(session, keeper, p200.id, 0, 0, "1")
    receive(session, admin, p200, location(wh, "B-01"), "3")  # above its level: not listed
    session.commit()
    rows = {r.product.sku: r for r in replenishment.replenishment_list(session)}
    assert set(rows) == {"P-100", "P-300"}
    assert (rows["P-100"].backorder, rows["P-100"].suggested) == (Decimal("2.000"), Decimal("7.000"))
    assert (rows["P-300"].backorder, rows["P-300"].free, rows["P-300"].suggested) == (
        Decimal("70.000"),
        Decimal("0.000"),
        Decimal("70.000"),
    )
    assert [(o.number, o.promised_date) for o in rows["P-300"].orders] == [(order.number, dt.date(2026, 11, 30))]
    with pytest.raises(LogisticsError):
        replenishment.reserve_for_waiting(session, make_user(session, "s@example.com", ["sales"]))


def test_an_unknown_move_kind_is_refused(
    session: Session, admin: User, wh: LogisticsWarehouse, seed: dict[str, Any]
) -> None:
    with pytest.raises(LogisticsError) as refused:
        stock.post_move(
            session,
            admin,
            kind="magic",
            product_id=seed["products"][0].id,
            location_id=location(wh, "A-01").id,
            quantity=Decimal(1),
        )
    assert refused.value.code == "unknown_move_kind"
    session.rollback()
    assert session.scalar(select(LogisticsLocation).where(LogisticsLocation.code == "A-01")) is not None
