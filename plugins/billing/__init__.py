"""Billing: payment terms, the credit gate, invoices, payments and dunning.

Makes sure the company is paid for what it delivers (DOMAIN.md BL-1 … BL-7, RV-7):

- customer accounts with terms, credit limit, rating, blocks and guarantees
  (``accounts``), payment terms and their due dates (``terms``);
- **one credit gate** (``credit``): exposure against the limit, overdue amounts, blocks
  and required prepayments, asked on every path that commits the company further, with
  exceptions granted by named roles that expire;
- invoices and credit notes with gapless numbers given at issue (``invoices``,
  ``invoice_documents``), payments and allocation, the customer balance and a signed
  online-payment webhook (``payments``, ``webhook``), the arithmetic they share (``ledger``);
- the settlement check and step (``settlement``), dunning with letters, pauses, late
  interest and statements of account (``dunning``, ``interest``, ``dunning_documents``),
  receivables reports (``reports``).

Steps and definitions: ``flow``. See docs/billing.md.
"""

from __future__ import annotations

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
name = "billing"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()
#: Bridge modules registered only when another plugin is enabled too.
extras = {
    "intake": "plugins.billing.bridges.intake",
    "review": "plugins.billing.bridges.review",
    "logistics": "plugins.billing.bridges.logistics",
    "kpi": "plugins.billing.bridges.kpi",
}

#: The screen modules; each adds its routes to ``views.bp`` and lists its ``MENU``.
_SCREENS = (
    "account_views",
    "term_views",
    "credit_views",
    "invoice_views",
    "payment_views",
    "dunning_views",
    "report_views",
)
#: The API modules; each defines a flask-smorest blueprint ``blp``.
_APIS = ("api_accounts", "api_credit", "api_invoices", "api_payments", "api_dunning", "api_reports")
#: The modules that send notifications; each lists its templates in ``NOTIFICATIONS``.
_NOTIFYING = ("accounts", "credit", "invoices", "payments", "dunning", "settlement")
#: The modules with scheduled jobs; each lists them in ``JOBS``.
_SCHEDULED = ("accounts", "credit", "dunning")
#: The modules printing documents; each lists them in ``DOCUMENTS``.
_PRINTING = ("invoice_documents", "dunning_documents")
#: Billing's screens share one drop-down menu in the navigation bar.
MENU_GROUP = N_("Billing")


def _modules(names: tuple[str, ...]) -> list[object]:
    import importlib

    return [importlib.import_module(f"plugins.billing.{module}") for module in names]


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    from plugins.billing import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    from plugins.billing.flow import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def ordo_register_roles() -> list[RoleDefinition]:
    from plugins.billing.flow import ROLES

    return list(ROLES)


@hookimpl
def ordo_register_models() -> list[str]:
    return ["plugins.billing.models"]


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_register_settings() -> list[Setting]:
    from plugins.billing.flow import SETTINGS

    return list(SETTINGS)


@hookimpl
def ordo_register_steps() -> list[Step]:
    from plugins.billing.flow import STEPS

    return list(STEPS)


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    return [template for module in _modules(_NOTIFYING) for template in getattr(module, "NOTIFICATIONS", ())]


@hookimpl
def ordo_register_documents() -> list[DocumentType]:
    return [document for module in _modules(_PRINTING) for document in getattr(module, "DOCUMENTS", ())]


@hookimpl
def ordo_register_jobs() -> list[Job]:
    return [job for module in _modules(_SCHEDULED) for job in getattr(module, "JOBS", ())]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    _modules(_SCREENS)  # each adds its routes to views.bp
    from plugins.billing.views import bp as screens
    from plugins.billing.webhook import bp as webhooks

    apis = [module.blp for module in _modules(_APIS)]  # type: ignore[attr-defined]
    return [screens, *apis, webhooks]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    from dataclasses import replace

    if user is not None and getattr(user, "customer_id", None) is not None:
        return []  # billing has no portal screens yet
    return [
        replace(item, group=item.group or MENU_GROUP)
        for module in _modules(_SCREENS)
        for item in getattr(module, "MENU", ())
    ]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    from plugins.billing.panel import panels

    return panels(session, order, user)


@hookimpl
def ordo_order_badges(orders: list[Order], session: Session) -> dict[int, list[Badge]]:
    from plugins.billing.credit import hold_badges

    return hold_badges(session, orders)


@hookimpl
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    from plugins.billing.flow import on_transitioned

    on_transitioned(session, order, transition, user)


@hookimpl
def ordo_order_guard(
    order: Order, action: str, transition: Transition, user: User | None, session: Session
) -> list[str]:
    from plugins.billing.flow import guard

    return guard(session, order, action, transition, user)


@hookimpl(trylast=True)
def ordo_demo_data(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Billing's part of the demo company: accounts in every credit state, invoices, payments, dunning."""
    from plugins.billing.demo import populate

    populate(session, users, customers)


@hookimpl
def ordo_demo_pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Pass billing's steps for the demo's orders: approve terms, invoice and collect."""
    from plugins.billing.demo import pass_step

    return pass_step(session, order, users)
