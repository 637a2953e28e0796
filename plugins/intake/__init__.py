"""Intake: receive orders from every channel, pre-check them and hand good ones on.

Phone, e-mail, fax, portal, API and batch-imported orders are recorded with their
channel, checked automatically and then by a clerk (DOMAIN.md IN-1 … IN-9).
So far: customer groups and price lists with their screens and API, the applicable
price of a line (``plugins.intake.pricing``) and the batch-import engine
(``plugins.intake.importing``) with its wizard, the pre-check rules
(``plugins.intake.precheck``); the pre-check steps, manual check and portal
arrive next (see docs/intake.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core import hookimpl
from core.contrib import MenuItem, MigrationBranch, Permission

if TYPE_CHECKING:
    import pluggy
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from core.contrib import Finding, Setting
    from core.models import Order, User

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "intake"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()

_STAFF = ("admin", "general_manager", "sales_manager", "sales", "order_clerk", "finance", "auditor")

PERMISSIONS = (
    Permission("intake.prices.read", "See price lists and customer groups", _STAFF),
    Permission("intake.prices.manage", "Manage price lists and customer groups", ("admin", "sales_manager")),
    Permission(
        "intake.orders.import", "Import orders from CSV and XLSX files", ("admin", "sales_manager", "order_clerk")
    ),
)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    return list(PERMISSIONS)


@hookimpl
def ordo_register_models() -> list[str]:
    return ["plugins.intake.models"]


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    from plugins.intake import import_views  # noqa: F401 -- nests intake_import in screens (/intake/import)
    from plugins.intake.api import blp as api
    from plugins.intake.views import bp as screens

    return [screens, api]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    return [
        MenuItem("Price lists", "intake.list_price_lists", "intake.prices.read", order=40, icon="tags"),
        MenuItem("Customer groups", "intake.list_groups", "intake.prices.read", order=41, icon="people"),
        MenuItem("Price check", "intake.price_check", "intake.prices.read", order=42, icon="calculator"),
        MenuItem("Import orders", "intake.intake_import.upload", "intake.orders.import", order=43, icon="upload"),
    ]


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    from plugins.intake import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def ordo_register_settings() -> list[Setting]:
    from plugins.intake.precheck import SETTINGS

    return list(SETTINGS)


@hookimpl
def ordo_order_validate(order: Order, session: Session) -> list[Finding]:
    from plugins.intake.precheck import run_precheck

    return run_precheck(session, order)
