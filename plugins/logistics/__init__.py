"""Logistics: stock, remote orders, carriers, picking, shipping, delivery and returns.

Gets confirmed orders to the customer, also outside the company's home region, and
brings returns back (DOMAIN.md LG-1 … LG-11, CORE-2):

- stock per product, warehouse and location, changed only by stock moves; reservation
  on confirmation, backorders, counts (``stock``, ``counts``, ``warehouses``,
  ``replenishment``);
- remote orders and their rules (``remote``); carriers, rates and the suggestion of the
  cheapest carrier meeting the promised date (``carriers``, ``connectors``);
- the outbound check, pick lists, packing, shipments, waybills and delivery notes
  (``outbound``, ``shipping``, ``documents``); tracking, exceptions, proof of delivery,
  receipt confirmation and acceptance (``tracking``, ``exceptions``, ``delivery``);
- returns with review, approval, receipt and QC disposition (``returns``); ageing of
  unshipped goods (``ageing``).

Steps and definitions: ``flow``. See docs/logistics.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from core import hookimpl
from core.contrib import (
    Badge,
    DocumentType,
    Job,
    MenuItem,
    MigrationBranch,
    NotificationTemplate,
    Permission,
    RoleDefinition,
    Setting,
    Step,
)
from core.labels import N_

if TYPE_CHECKING:
    import pluggy
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from core.contrib import Panel, Transition
    from core.models import Customer, Order, User

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "logistics"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()
#: Bridge modules registered only when another plugin is enabled too.
extras = {
    "intake": "plugins.logistics.bridges.intake",
    "review": "plugins.logistics.bridges.review",
    "kpi": "plugins.logistics.bridges.kpi",
}

#: The screen modules; each adds its routes to ``views.bp`` and lists its ``MENU``.
_SCREENS = (
    "stock_views",
    "count_views",
    "warehouse_views",
    "outbound_views",
    "picking_views",
    "shipment_views",
    "delivery_views",
    "carrier_views",
    "return_views",
    "ageing_views",
)
#: The modules that send notifications; each lists its templates in ``NOTIFICATIONS``.
_NOTIFYING = ("shipping", "tracking", "exceptions", "delivery", "returns", "ageing")


def _modules(names: tuple[str, ...]) -> list[object]:
    import importlib

    return [importlib.import_module(f"plugins.logistics.{module}") for module in names]


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    from plugins.logistics import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    from plugins.logistics.flow import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def ordo_register_roles() -> list[RoleDefinition]:
    from plugins.logistics.flow import ROLES

    return list(ROLES)


@hookimpl
def ordo_register_models() -> list[str]:
    return ["plugins.logistics.models"]


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_register_settings() -> list[Setting]:
    from plugins.logistics.flow import SETTINGS

    return list(SETTINGS)


@hookimpl
def ordo_register_steps() -> list[Step]:
    from plugins.logistics.flow import STEPS

    return list(STEPS)


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    return [template for module in _modules(_NOTIFYING) for template in getattr(module, "NOTIFICATIONS", ())]


@hookimpl
def ordo_register_documents() -> list[DocumentType]:
    from plugins.logistics.documents import DOCUMENTS

    return list(DOCUMENTS)


@hookimpl
def ordo_register_jobs() -> list[Job]:
    from plugins.logistics import ageing, tracking

    return [*ageing.JOBS, *tracking.JOBS]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    _modules(_SCREENS)  # each adds its routes to views.bp
    from plugins.logistics import portal_return_views, portal_views  # noqa: F401  (routes on portal.bp)
    from plugins.logistics.api import blp as api
    from plugins.logistics.api import webhooks
    from plugins.logistics.portal import bp as portal
    from plugins.logistics.views import bp as screens

    return [screens, portal, api, webhooks]


#: Logistics' screens share one drop-down menu in the navigation bar.
MENU_GROUP = N_("Logistics")


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    if user is not None and getattr(user, "customer_id", None) is not None:
        from plugins.logistics.portal import MENU as PORTAL_MENU

        return list(PORTAL_MENU)  # a customer's portal user: its deliveries and returns
    return [
        replace(item, group=item.group or MENU_GROUP)
        for module in _modules(_SCREENS)
        for item in getattr(module, "MENU", ())
    ]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    from plugins.logistics.panel import panels

    return panels(session, order, user)


@hookimpl
def ordo_order_badges(orders: list[Order], session: Session) -> dict[int, list[Badge]]:
    from plugins.logistics.remote import remote_badges

    return remote_badges(session, orders)


@hookimpl
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    from plugins.logistics.flow import on_transitioned

    on_transitioned(session, order, transition, user)


@hookimpl
def ordo_order_guard(
    order: Order, action: str, transition: Transition, user: User | None, session: Session
) -> list[str]:
    from plugins.logistics.flow import guard

    return guard(session, order, action, transition, user)


@hookimpl
def ordo_demo_data(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Logistics' part of the demo company: warehouse, stock, carriers, orders shipped and received."""
    from plugins.logistics.demo import populate

    populate(session, users, customers)


@hookimpl
def ordo_demo_pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Pass logistics' steps for the demo's orders: release, pick, pack, ship, receive."""
    from plugins.logistics.demo import pass_step

    return pass_step(session, order, users)
