"""Logistics' printable documents: waybill (运单), delivery note (送货单), picking list (拣货单).

Why: the procedures print a waybill with ship-from, ship-to, goods, quantities and
weight for the carrier (LG-4), a delivery note the customer signs on hand-over (LG-7)
and a picking list sorted by location with the standard picking time (LG-6).

The waybill and the delivery note are order documents (core's document list, the API's
``/orders/{id}/documents/{type}``): one page per shipment that has shipped. The
shipment page prints them for one shipment (also before it ships, to go with the
packages), and the picking list page prints its list; :func:`render_shipment_pdf` and
:func:`render_pick_list_pdf` render the same templates outside core's order documents.
Codes are printed through ``tr(msgid, language)`` like review's documents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from babel.support import NullTranslations
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import TIMEZONE_NAME, company_now
from core.contrib import DocumentType
from core.documents import (
    check_language,
    environment,
    html_to_pdf,
    logo_data_uri,
    order_company,
    translations_for,
)
from core.labels import N_
from core.models import Order, Product, User
from core.plugins import Registry
from core.settings import session_registry
from plugins.logistics import flow, stock
from plugins.logistics.models import (
    SHIPMENT_KINDS,
    SHIPMENT_STATUSES,
    LogisticsCarrier,
    LogisticsPickList,
    LogisticsService,
    LogisticsShipment,
    LogisticsWarehouse,
)

WAYBILL = "logistics.waybill"
DELIVERY_NOTE = "logistics.delivery_note"
PICKING_LIST = "logistics.picking_list"
TEMPLATES = {
    WAYBILL: "logistics/documents/waybill.html",
    DELIVERY_NOTE: "logistics/documents/delivery_note.html",
    PICKING_LIST: "logistics/documents/picking_list.html",
}
LABELS = {
    WAYBILL: N_("Waybill 运单"),
    DELIVERY_NOTE: N_("Delivery note 送货单"),
    PICKING_LIST: N_("Picking list 拣货单"),
}
_KG = Decimal("0.001")


def _translator(session: Session) -> Callable[[str | None, str], str]:
    """``tr(msgid, language)``: a label in the document's language."""
    registry = session_registry(session)
    loaded: dict[str, NullTranslations] = {}

    def tr(msgid: str | None, language: str) -> str:
        if not msgid:
            return ""
        if language not in loaded:
            loaded[language] = translations_for(registry, language)
        return str(loaded[language].gettext(msgid))

    return tr


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u.name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def shipment_page(session: Session, order: Order, shipment: LogisticsShipment) -> dict[str, Any]:
    """What one shipment's page of a waybill or delivery note prints."""
    warehouse = session.get(LogisticsWarehouse, shipment.warehouse_id)
    carrier = session.get(LogisticsCarrier, shipment.carrier_id) if shipment.carrier_id else None
    service = session.get(LogisticsService, shipment.service_id) if shipment.service_id else None
    order_lines = {line.id: line for line in order.lines}
    products = {
        p.id: p
        for p in session.scalars(select(Product).where(Product.id.in_([line.product_id for line in shipment.lines])))
    }
    goods: dict[int, dict[str, Any]] = {}
    for line in shipment.lines:
        quantity = stock.q3(line.picked_quantity if line.picked_quantity is not None else line.quantity)
        if quantity <= 0:
            continue
        product = products[line.product_id]
        order_line = order_lines.get(line.order_line_id)
        row = goods.setdefault(
            line.order_line_id,
            {
                "position": order_line.position if order_line else 0,
                "sku": product.sku,
                "name": product.name,
                "spec": (order_line.description if order_line and order_line.description else product.spec),
                "unit": order_line.unit if order_line else product.unit,
                "quantity": Decimal("0"),
                "ordered": stock.q3(order_line.quantity) if order_line else None,
            },
        )
        row["quantity"] += quantity
    packages = list(shipment.packages)
    total_weight = sum((Decimal(str(p.weight)) for p in packages), Decimal("0")).quantize(_KG)
    volume = sum(
        (
            Decimal(str(p.length)) * Decimal(str(p.width)) * Decimal(str(p.height)) / Decimal(1_000_000)
            for p in packages
        ),
        Decimal("0"),
    ).quantize(Decimal("0.0001"))
    return {
        "shipment": shipment,
        "warehouse": warehouse,
        "carrier": carrier,
        "service": service,
        "goods": sorted(goods.values(), key=lambda g: (g["position"], g["sku"])),
        "packages": packages,
        "total_weight": total_weight,
        "total_volume": volume,
        "total_units": sum((g["quantity"] for g in goods.values()), Decimal("0")),
        "status": SHIPMENT_STATUSES.get(shipment.status, shipment.status),
        "kind": SHIPMENT_KINDS.get(shipment.kind, shipment.kind),
    }


def shipments_context(session: Session, order: Order, shipments: list[LogisticsShipment]) -> dict[str, Any]:
    """The waybill's and delivery note's variables for ``shipments`` of ``order`` (one page each)."""
    return {
        "tr": _translator(session),
        "pages": [shipment_page(session, order, s) for s in shipments],
        "users": _names(session, [s.shipped_by_id for s in shipments]),
    }


def shipped_shipments(session: Session, order: Order) -> list[LogisticsShipment]:
    """The order's shipments whose goods have left, oldest first."""
    return list(
        session.scalars(
            select(LogisticsShipment)
            .where(LogisticsShipment.order_id == order.id, LogisticsShipment.status.in_(("shipped", "delivered")))
            .order_by(LogisticsShipment.shipped_at, LogisticsShipment.id)
        )
    )


def order_shipments_context(session: Session, order: Order) -> dict[str, Any]:
    """The order documents' variables: every shipped shipment of the order."""
    return shipments_context(session, order, shipped_shipments(session, order))


def _base_context(
    session: Session, registry: Registry, name: str, order: Any, company_order: Order, language: str
) -> dict[str, Any]:
    company = order_company(session, company_order)
    return {
        "order": order,
        "document": SimpleNamespace(name=name, label=LABELS[name]),
        "title": str(translations_for(registry, language).gettext(LABELS[name])),
        "company": company,
        "logo": logo_data_uri(session, company),
        "printed_at": company_now(),
        "timezone": TIMEZONE_NAME,
        "language": language,
    }


def render_shipment_html(
    session: Session, registry: Registry, name: str, shipment: LogisticsShipment, language: str = "zh_CN"
) -> str:
    """The waybill or delivery note (``name``) of one shipment, as HTML."""
    check_language(language)
    order = session.get(Order, shipment.order_id)
    assert order is not None
    context = _base_context(session, registry, name, order, order, language)
    context.update(shipments_context(session, order, [shipment]))
    return environment(registry, language).get_template(TEMPLATES[name]).render(**context)


def render_shipment_pdf(
    session: Session, registry: Registry, name: str, shipment: LogisticsShipment, language: str = "zh_CN"
) -> bytes:
    """The waybill or delivery note (``name``) of one shipment, as PDF bytes."""
    return html_to_pdf(render_shipment_html(session, registry, name, shipment, language))


def pick_list_context(session: Session, pick_list: LogisticsPickList) -> dict[str, Any]:
    """The picking list's variables: rows by location, the standard time, orders, who made it."""
    from plugins.logistics.shipping import pick_rows

    rows = pick_rows(session, pick_list)
    orders = {row.order.id: row.order for row in rows}
    return {
        "tr": _translator(session),
        "pick_list": pick_list,
        "warehouse": session.get(LogisticsWarehouse, pick_list.warehouse_id),
        "rows": rows,
        "orders": list(orders.values()),
        "shipments": sorted({row.shipment.number for row in rows}),
        "total_units": sum((stock.q3(row.line.quantity) for row in rows), Decimal("0")),
        "minutes_per_line": Decimal(str(_setting(session, flow.PICK_MINUTES_PER_LINE))),
        "minutes_per_unit": Decimal(str(_setting(session, flow.PICK_MINUTES_PER_UNIT))),
        "users": _names(session, [pick_list.created_by_id, pick_list.confirmed_by_id]),
    }


def _setting(session: Session, key: str) -> Any:
    from core.settings import get_setting

    return get_setting(session, key) or 0


def render_pick_list_html(
    session: Session, registry: Registry, pick_list: LogisticsPickList, language: str = "zh_CN"
) -> str:
    """The picking list as HTML (its number stands where an order document has the order's)."""
    check_language(language)
    context = pick_list_context(session, pick_list)
    first = context["rows"][0].order if context["rows"] else session.scalars(select(Order).limit(1)).first()
    assert first is not None
    base = _base_context(session, registry, PICKING_LIST, SimpleNamespace(number=pick_list.number), first, language)
    return environment(registry, language).get_template(TEMPLATES[PICKING_LIST]).render(**base, **context)


def render_pick_list_pdf(
    session: Session, registry: Registry, pick_list: LogisticsPickList, language: str = "zh_CN"
) -> bytes:
    """The picking list as PDF bytes."""
    return html_to_pdf(render_pick_list_html(session, registry, pick_list, language))


DOCUMENTS: tuple[DocumentType, ...] = (
    DocumentType(
        WAYBILL,
        LABELS[WAYBILL],
        TEMPLATES[WAYBILL],
        flow.STOCK_READ,
        context=order_shipments_context,
        plugin="logistics",
        for_customer=False,
    ),
    DocumentType(
        DELIVERY_NOTE,
        LABELS[DELIVERY_NOTE],
        TEMPLATES[DELIVERY_NOTE],
        flow.STOCK_READ,
        context=order_shipments_context,
        plugin="logistics",
        for_customer=True,
    ),
)
