"""Intake: receive orders from every channel, pre-check them and hand good ones on.

Phone, e-mail, fax, portal, API and batch-imported orders are recorded with their
channel, checked automatically and then by a clerk (DOMAIN.md IN-1 … IN-9).
Customer groups and price lists (``plugins.intake.pricing``), the batch-import engine
and wizard (``plugins.intake.importing``), the pre-check rules
(``plugins.intake.precheck``) and the steps that run them and the manual check
(``plugins.intake.flow``). See docs/intake.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core import hookimpl
from core.contrib import Job, MenuItem, MigrationBranch, NotificationTemplate, Permission, Step
from core.labels import N_

if TYPE_CHECKING:
    import pluggy
    from flask import Blueprint, Flask
    from sqlalchemy.orm import Session

    from core.contrib import Finding, Panel, Setting, Transition
    from core.models import Customer, Order, User

#: The plugin's name: its entry point, migration branch label and table prefix.
name = "intake"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()
#: Bridge modules registered only when another plugin is enabled too.
extras = {"kpi": "plugins.intake.bridges.kpi"}

_STAFF = ("admin", "general_manager", "sales_manager", "sales", "order_clerk", "finance", "auditor")

PERMISSIONS = (
    Permission("intake.prices.read", "See price lists and customer groups", _STAFF),
    Permission("intake.prices.manage", "Manage price lists and customer groups", ("admin", "sales_manager")),
    Permission(
        "intake.orders.import", "Import orders from CSV and XLSX files", ("admin", "sales_manager", "order_clerk")
    ),
    Permission(
        "intake.orders.check",
        "Work the manual-check queue: correct, accept or reject orders",
        ("admin", "sales_manager", "order_clerk"),
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
    # Imported for their side effect: each nests its blueprint in screens (/intake/...).
    from plugins.intake import entry_views, import_views, queue_views, rules_views  # noqa: F401
    from plugins.intake.api import blp as api
    from plugins.intake.portal import bp as portal
    from plugins.intake.views import bp as screens

    return [screens, api, portal]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    from plugins.intake import entry_views, queue_views, rules_views

    return [
        MenuItem("Price lists", "intake.list_price_lists", "intake.prices.read", order=40, icon="tags"),
        MenuItem("Customer groups", "intake.list_groups", "intake.prices.read", order=41, icon="people"),
        MenuItem("Price check", "intake.price_check", "intake.prices.read", order=42, icon="calculator"),
        MenuItem("Import orders", "intake.intake_import.upload", "intake.orders.import", order=43, icon="upload"),
        *queue_views.MENU,
        *entry_views.MENU,
        *rules_views.MENU,
    ]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    from plugins.intake.panel import panels

    return panels(session, order, user)


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    from plugins.intake import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def ordo_register_settings() -> list[Setting]:
    from plugins.intake import entry_views, flow, portal, precheck

    return [*precheck.SETTINGS, *flow.SETTINGS, *portal.SETTINGS, *entry_views.SETTINGS]


@hookimpl
def ordo_register_steps() -> list[Step]:
    from plugins.intake.flow import STEPS

    return list(STEPS)


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    from plugins.intake.flow import NOTIFICATIONS

    return list(NOTIFICATIONS)


def _remind_and_escalate(session: Session, now: object) -> None:
    from plugins.intake.flow import remind_and_escalate

    remind_and_escalate(session, now)  # type: ignore[arg-type]


@hookimpl
def ordo_register_jobs() -> list[Job]:
    return [
        Job(
            "intake.manual_check_reminders",
            "every:1800",
            _remind_and_escalate,
            plugin=name,
            label=N_("Remind and escalate manual checks"),
        )
    ]


@hookimpl(trylast=True)
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    # Last, so other plugins see the submission before the pre-check moves the order on.
    from plugins.intake.flow import on_transitioned

    on_transitioned(session, order, transition, user)


@hookimpl
def ordo_order_guard(order: Order, action: str, user: User | None, session: Session) -> list[str]:
    from plugins.intake.flow import four_eyes_reasons

    return four_eyes_reasons(session, order, action, user)


@hookimpl
def ordo_order_validate(order: Order, session: Session) -> list[Finding]:
    from plugins.intake.precheck import run_precheck

    return run_precheck(session, order)


@hookimpl
def ordo_demo_data(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Intake's part of the demo company: prices, ordering rules, an order per channel."""
    from plugins.intake.demo import populate

    populate(session, users, customers)
