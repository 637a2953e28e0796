"""Shared helpers for the logistics plugin's tests: a warehouse, stock receipts, confirmation.

Kept small and built on the real services (``stock.post_move``, ``take_action``) so every
logistics test module sets up stock and orders the same way. Import them by module name
(pytest puts ``tests/plugins`` on ``sys.path``; there is no package ``__init__``)::

    from logistics_helpers import confirm, location, make_warehouse, receive, remote_payload
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from core.models import Order, User
from core.plugins import Registry
from core.services.orders import default_company, take_action
from core.testing import order_payload
from plugins.logistics import stock
from plugins.logistics.models import LogisticsLocation, LogisticsWarehouse


def make_warehouse(
    session: Session,
    company_id: int,
    code: str = "WH1",
    locations: Iterable[str] = ("A-01", "B-01"),
    *,
    name: str = "重庆总仓",
    province: str = "重庆市",
    is_default: bool = True,
) -> LogisticsWarehouse:
    """Create and commit a warehouse with ``locations`` walked in the given order (sequence 1, 2, …)."""
    wh = LogisticsWarehouse(company_id=company_id, code=code, name=name, province=province, is_default=is_default)
    wh.locations = [LogisticsLocation(code=loc, sequence=i) for i, loc in enumerate(locations, start=1)]
    session.add(wh)
    session.commit()
    return wh


def location(warehouse: LogisticsWarehouse, code: str) -> LogisticsLocation:
    """The location ``code`` of ``warehouse``."""
    return next(loc for loc in warehouse.locations if loc.code == code)


def receive(
    session: Session,
    actor: User,
    product: Any,
    location: LogisticsLocation | int,
    qty: Decimal | str | int,
    *,
    backorders: bool = False,
) -> None:
    """Post and commit a stock receipt of ``qty`` of ``product`` (a Product or an id) at ``location``.

    With ``backorders=True`` the new stock is then reserved for waiting orders.
    """
    product_id = product if isinstance(product, int) else product.id
    location_id = location if isinstance(location, int) else location.id
    stock.post_move(
        session, actor, kind="receipt", product_id=product_id, location_id=location_id, quantity=Decimal(str(qty))
    )
    if backorders:
        stock.reserve_backorders(session, [product_id], actor)
    session.commit()


def confirm(session: Session, registry: Registry, actor: User, order: Order) -> None:
    """Submit and confirm ``order`` (the pipeline with logistics alone) and commit."""
    take_action(session, registry, actor, order, "submit")
    take_action(session, registry, actor, order, "confirm")
    session.commit()


def set_home_region(session: Session, region: str = "重庆市") -> None:
    """Set the company's home region (``home_province``) and commit."""
    default_company(session).home_province = region
    session.commit()


def remote_payload(**overrides: Any) -> dict[str, Any]:
    """A valid order payload for C002 shipping to 四川省/成都市 (remote from 重庆市).

    Use as ``make_order(session, actor, **remote_payload())``.
    """
    body = order_payload(
        "C002",
        reference="PO-CD-001",
        ship_to={
            "contact": "李娜",
            "phone": "028-8000-0002",
            "province": "四川省",
            "city": "成都市",
            "address": "高新区天府大道 100 号",
        },
    )
    body.update(overrides)
    return body
