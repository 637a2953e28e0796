"""Review: multi-department order review, approvals, the credit gate and change requests.

Technical, production, quality, purchasing and finance review an order before it is
confirmed (``plugins.review.sheets``, templates in ``plugins.review.templates``);
quotations give the margins (``quotation``); approval limits, audit supervision, the
president and the chairman decide (``approval``); a credit gate stands before review
(``credit``); confirmed orders change only through approved change requests
(``changes``) (DOMAIN.md RV-1 … RV-9, CORE-5). Steps and definitions: ``flow``.
See docs/review.md.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from core import hookimpl
from core.contrib import (
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
name = "review"
#: The plugin's version.
version = "0.1.0"
#: Plugins that must be enabled for this one to work.
requires: tuple[str, ...] = ()
#: Bridge modules registered only when another plugin is enabled too.
extras = {"intake": "plugins.review.bridges.intake", "kpi": "plugins.review.bridges.kpi"}


@hookimpl
def ordo_add_hookspecs(pm: pluggy.PluginManager) -> None:
    from plugins.review import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def ordo_register_permissions() -> list[Permission]:
    from plugins.review.flow import PERMISSIONS

    return list(PERMISSIONS)


@hookimpl
def ordo_register_roles() -> list[RoleDefinition]:
    from plugins.review.flow import ROLES

    return list(ROLES)


@hookimpl
def ordo_register_models() -> list[str]:
    return ["plugins.review.models"]


@hookimpl
def ordo_register_migrations() -> list[MigrationBranch]:
    return [MigrationBranch(name, Path(__file__).parent / "migrations" / "versions")]


@hookimpl
def ordo_register_settings() -> list[Setting]:
    from plugins.review.flow import SETTINGS

    return list(SETTINGS)


@hookimpl
def ordo_register_steps() -> list[Step]:
    from plugins.review.flow import STEPS

    return list(STEPS)


@hookimpl
def ordo_register_notifications() -> list[NotificationTemplate]:
    from plugins.review import approval, changes, credit, quotation, sheets, sla

    return [
        *sheets.NOTIFICATIONS,
        *sla.NOTIFICATIONS,
        *credit.NOTIFICATIONS,
        *approval.NOTIFICATIONS,
        *quotation.NOTIFICATIONS,
        *changes.NOTIFICATIONS,
    ]


@hookimpl
def ordo_register_documents() -> list[DocumentType]:
    from plugins.review.documents import DOCUMENTS

    return list(DOCUMENTS)


def _remind_and_escalate(session: Session, now: dt.datetime) -> None:
    from plugins.review.sla import remind_and_escalate

    remind_and_escalate(session, now)


@hookimpl
def ordo_register_jobs() -> list[Job]:
    return [
        Job(
            "review.task_reminders",
            "every:1800",
            _remind_and_escalate,
            plugin=name,
            label=N_("Remind and escalate review tasks"),
        )
    ]


@hookimpl
def ordo_register_blueprints(app: Flask) -> list[Blueprint]:
    # Imported for their side effect: each nests its blueprint in screens (/review/...).
    from plugins.review import (  # noqa: F401
        approvals_views,
        change_views,
        quotation_views,
        settings_views,
        sheet_views,
        tasks_views,
    )
    from plugins.review.api import blp as api
    from plugins.review.views import bp as screens

    return [screens, api]


@hookimpl
def ordo_menu_items(user: User) -> list[MenuItem]:
    from plugins.review import (
        approvals_views,
        change_views,
        quotation_views,
        settings_views,
        sheet_views,
        tasks_views,
    )

    return [
        *tasks_views.MENU,
        *sheet_views.MENU,
        *approvals_views.MENU,
        *change_views.MENU,
        *quotation_views.MENU,
        *settings_views.MENU,
    ]


@hookimpl
def ordo_order_panels(order: Order, user: User, session: Session) -> list[Panel]:
    from plugins.review.panel import panels

    return panels(session, order, user)


@hookimpl(trylast=True)
def ordo_order_transitioned(order: Order, transition: Transition, user: User | None, session: Session) -> None:
    # Last, so other plugins see a move before review's automatic steps move the order on.
    from plugins.review.flow import on_transitioned

    on_transitioned(session, order, transition, user)


@hookimpl
def ordo_order_guard(
    order: Order, action: str, transition: Transition, user: User | None, session: Session
) -> list[str]:
    from plugins.review.flow import guard

    return guard(session, order, action, transition, user)


@hookimpl
def ordo_demo_data(session: Session, users: dict[str, User], customers: dict[str, Customer]) -> None:
    """Review's part of the demo company: orders at every review state, a revised order."""
    from plugins.review.demo import populate

    populate(session, users, customers)


@hookimpl
def ordo_demo_pass_step(session: Session, order: Order, users: dict[str, User]) -> bool:
    """Pass review's steps for the demo's orders: the demo's reviewers answer, approvers approve."""
    from plugins.review.demo import pass_step

    return pass_step(session, order, users)
