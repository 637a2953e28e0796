"""Intake: receive orders from every channel, pre-check them and hand good ones on.

Phone, e-mail, fax, portal, API and batch-imported orders are recorded with their
channel, checked automatically and then by a clerk (DOMAIN.md IN-1 … IN-9).
So far: its tables (customer groups and profiles, price lists, product ordering rules),
the applicable-price computation and batch import; the pre-check, manual check, portal
and screens arrive next (see docs/intake.md).
"""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.contrib import MigrationBranch, Permission

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
