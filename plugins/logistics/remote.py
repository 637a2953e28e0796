"""Remote orders (异地订单, LG-1): whether an order ships outside the company's home region.

The home region is the company's ``home_province`` (company settings, e.g. 重庆市). An
order is remote when its ship-to province — or, for a home region that is a city
inside a province, its ship-to city — is another one. Names are compared without the
administrative suffix, so 重庆 and 重庆市, 四川 and 四川省 are the same region. With no
home region set, or no ship-to province on the order, nothing is remote.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contrib import Badge
from core.models import Order
from core.services.orders import default_company
from plugins.logistics.models import LogisticsOrder

_SUFFIXES = ("特别行政区", "维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "省", "市")


def region_key(name: str) -> str:
    """``name`` without spaces and its administrative suffix (省, 市, 自治区 …), for comparing regions."""
    text = "".join((name or "").split())
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) > len(suffix):
            return text[: -len(suffix)]
    return text


def same_region(home: str, province: str, city: str) -> bool:
    """Whether a ship-to ``province``/``city`` lies in the ``home`` region (a province or a city)."""
    key = region_key(home)
    return key in (region_key(province), region_key(city))


def home_region(session: Session) -> str:
    """The company's home region as set on the company settings screen ("" when not set)."""
    return default_company(session).home_province or ""


def ships_outside(home: str, order: Order) -> bool:
    """Whether ``order``'s ship-to lies outside ``home`` (False without a home or a ship-to)."""
    if not home or not (order.ship_to_province or order.ship_to_city):
        return False
    return not same_region(home, order.ship_to_province, order.ship_to_city)


def is_remote(session: Session, order: Order) -> bool:
    """Whether ``order`` ships outside the home region (LG-1)."""
    return ships_outside(home_region(session), order)


def remote_badges(session: Session, orders: list[Order]) -> dict[int, list[Badge]]:
    """A "Remote" mark for each remote order of a list page (decided at confirmation, else now)."""
    ids = [order.id for order in orders]
    decided = dict(
        session.execute(select(LogisticsOrder.order_id, LogisticsOrder.remote).where(LogisticsOrder.order_id.in_(ids)))
        .tuples()
        .all()
    )
    home = home_region(session)
    badges: dict[int, list[Badge]] = {}
    for order in orders:
        remote = decided.get(order.id)
        if remote is None:  # not confirmed yet: from the ship-to address
            remote = ships_outside(home, order)
        if remote:
            badges[order.id] = [Badge(_("Remote"), "info", _("Ships outside the home region"))]
    return badges
